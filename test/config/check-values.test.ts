/**
 * Values the schema admits but the gateway could not honour as written are located errors; the
 * edges that can be honoured stay valid. (One fixture per kind sits in fixtures/invalid.)
 */
import { describe, expect, test } from "bun:test";
import { ConfigError } from "../../src/config/errors.ts";
import { parseConfig } from "../../src/config/load.ts";

/** A config with `server`, `usage`, an upstream, a plan and a tenant with one key, each open to additions. */
function config(
  parts: {
    server?: string;
    usage?: string;
    upstream?: string;
    plan?: string;
    tenant?: string;
    key?: string;
  } = {},
) {
  return `version: 1
server: { listen: 127.0.0.1:0, admin: 127.0.0.1:0 ${parts.server ?? ""} }
usage: { flushRows: 10 ${parts.usage ?? ""} }
upstreams:
  api: { url: "http://127.0.0.1:9000" ${parts.upstream ?? ""} }
plans:
  free: { rules: [{ allow: "GET /v1/**" }] ${parts.plan ?? ""} }
routes: [{ match: "* /v1/**", upstream: api }]
tenants:
  acme:
    plan: free
    ${parts.tenant ?? ""}
    keys:
      - { id: acme-dev, secret: gh_demo_acme_0001 ${parts.key ?? ""} }
`;
}

function problems(yaml: string, env: Record<string, string> = {}): string[] {
  try {
    parseConfig(yaml, "gateway.yaml", env);
    return [];
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.issues.map((i) => `${i.path}: ${i.message}`);
  }
}

describe("durations", () => {
  test.each([
    [{ plan: ", limits: [{ limit: 1, window: 0s }]" }, "plans.free.limits[0].window: must be longer than 0"],
    [
      { tenant: "limits: [{ limit: 1, window: 0ms }]" },
      "tenants.acme.limits[0].window: must be longer than 0",
    ],
    [
      { key: ", limits: [{ limit: 1, window: 0m }]" },
      "tenants.acme.keys[0].limits[0].window: must be longer than 0",
    ],
    [{ plan: ", limits: [{ limit: 1, window: 366d }]" }, "plans.free.limits[0].window: must be at most 365d"],
    [{ upstream: ", timeout: 0s" }, "upstreams.api.timeout: must be longer than 0"],
    [{ upstream: ", timeout: 25d" }, "upstreams.api.timeout: must be at most 24d"],
    [{ upstream: ", idleTimeout: 0ms" }, "upstreams.api.idleTimeout: must be longer than 0"],
    [{ upstream: ", idleTimeout: 2147483648ms" }, "upstreams.api.idleTimeout: must be at most 24d"],
    [{ server: ", idleTimeout: 0s" }, "server.idleTimeout: must be longer than 0"],
    [{ server: ", idleTimeout: 256s" }, "server.idleTimeout: must be at most 255s"],
    [{ server: ", drainTimeout: 30d" }, "server.drainTimeout: must be at most 24d"],
    [{ usage: ", flushInterval: 600h" }, "usage.flushInterval: must be at most 24d"],
    [{ usage: ", retention: 3651d" }, "usage.retention: must be at most 3650d"],
  ])("%p → %s", (parts, message) => {
    expect(problems(config(parts))).toEqual([message]);
  });

  test("numbers too large for a double are refused, not read as Infinity", () => {
    const huge = "9".repeat(400);
    expect(Number(huge)).toBe(Number.POSITIVE_INFINITY);
    expect(problems(config({ plan: `, limits: [{ limit: 1, window: ${huge}d }]` }))).toEqual([
      "plans.free.limits[0].window: must be at most 365d",
    ]);
    expect(problems(config({ usage: `, retention: ${huge}ms` }))).toEqual([
      "usage.retention: must be at most 3650d",
    ]);
    expect(problems(config({ upstream: `, timeout: ${huge}s` }))).toEqual([
      "upstreams.api.timeout: must be at most 24d",
    ]);
    expect(problems(config({ server: `, maxBodySize: ${huge}gb` }))).toEqual([
      "server.maxBodySize: must be at most 1024gb",
    ]);
  });

  test("counts beyond what a number holds exactly are refused", () => {
    expect(problems(config({ plan: ", quota: { limit: 99999999999999999999, period: month }" }))).toEqual([
      "plans.free.quota.limit: must be at most 9007199254740991",
    ]);
    expect(problems(config({ plan: ", limits: [{ limit: 4294967296, window: 1s }]" }))).toEqual([
      "plans.free.limits[0].limit: must be at most 4294967295",
    ]);
  });

  test("the edges that can be honoured are valid", () => {
    const edges = config({
      server: ", idleTimeout: 255s, drainTimeout: 0s, maxBodySize: 1024gb",
      usage: ", flushInterval: 0ms, retention: 0d",
      upstream: ", timeout: 24d, idleTimeout: 1ms",
      plan: ", limits: [{ limit: 4294967295, window: 365d }, { limit: 1, window: 1ms }]",
    });
    expect(problems(edges)).toEqual([]);
  });
});

describe("settings that would be ignored", () => {
  test("anchor on a quota that is not monthly", () => {
    expect(problems(config({ plan: ", quota: { limit: 10, period: hour, anchor: 2 }" }))).toEqual([
      "plans.free.quota.anchor: anchor applies to monthly quotas only; this one is per hour",
    ]);
    expect(problems(config({ tenant: "quota: { limit: 10, period: month, anchor: 2 }" }))).toEqual([]);
  });

  test("by: tenant on a key's limits or quota, which always count that key", () => {
    expect(
      problems(
        config({
          key: ", limits: [{ limit: 1, window: 1s, by: tenant }], quota: { limit: 1, period: day, by: tenant }",
        }),
      ),
    ).toEqual([
      "tenants.acme.keys[0].limits[0].by: a key's limits and quota always count that key alone",
      "tenants.acme.keys[0].quota.by: a key's limits and quota always count that key alone",
    ]);
    expect(problems(config({ key: ", limits: [{ limit: 1, window: 1s, by: key }]" }))).toEqual([]);
  });

  test("a listener port above 65535", () => {
    expect(
      problems(config({ server: "" }).replace("listen: 127.0.0.1:0", "listen: 127.0.0.1:65536")),
    ).toEqual(["server.listen: the port must be at most 65535"]);
  });
});

describe("upstream headers", () => {
  const headers = (h: string) => config({ upstream: `, headers: { ${h} }` });

  test.each([
    "host: example.com",
    "Connection: close",
    "content-length: '0'",
    "transfer-encoding: chunked",
    "TE: trailers",
    "upgrade: websocket",
    "keep-alive: timeout=5",
    "proxy-authorization: Basic eA==",
    "x-gatehouse-tenant: other",
    "X-Gatehouse-Key-Id: other",
    "x-request-id: fixed",
    "x-forwarded-for: 10.0.0.1",
    "X-Forwarded-Proto: https",
  ])("%s is the gateway's", (h) => {
    const found = problems(headers(h));
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(/hop-by-hop or framing header|set by the gateway for each request/);
  });

  test("names that differ only in case", () => {
    expect(problems(headers("x-api-key: a, X-API-Key: b"))).toEqual([
      'upstreams.api.headers.X-API-Key: "X-API-Key" is the same header as "x-api-key" (header names ignore case)',
    ]);
  });

  test.each([
    ['"a\\r\\nx-admin: 1"', "control character"],
    ['"a\\nb"', "control character"],
    ['"a\\0b"', "control character"],
    ['"a\\x1bb"', "control character"],
    ['"price \\u20ac"', "beyond Latin-1"],
  ])("the value %s", (value, what) => {
    const found = problems(headers(`x-api-version: ${value}`));
    expect(found).toHaveLength(1);
    expect(found[0]).toStartWith("upstreams.api.headers.x-api-version: ");
    expect(found[0]).toContain(what);
  });

  test("ordinary credentials, tabs and Latin-1 are fine", () => {
    expect(problems(headers('authorization: "Bearer abc", x-note: "a\\tb", x-name: "Jos\\u00e9"'))).toEqual(
      [],
    );
  });
});

describe("built-in upstreams", () => {
  const withMock = (mock: string) =>
    config().replace('  api: { url: "http://127.0.0.1:9000"  }', `  api: ${mock}`);

  test.each([
    ["{ mock: hang, timeout: 25d }", "upstreams.api.timeout: must be at most 24d"],
    ["{ mock: stall, idleTimeout: 0s }", "upstreams.api.idleTimeout: must be longer than 0"],
    ["{ mock: { delay: 30d } }", "upstreams.api.mock.delay: must be at most 24d"],
    [
      '{ mock: { status: 200, headers: { x-note: "a\\r\\nset-cookie: x=1" } } }',
      "upstreams.api.mock.headers.x-note: the value contains a control character or a character beyond Latin-1",
    ],
  ])("%s", (mock, problem) => {
    expect(problems(withMock(mock))).toEqual([problem]);
  });

  test("their edges are valid", () => {
    expect(
      problems(
        withMock("{ mock: { delay: 24d, status: 503, headers: { retry-after: '5' } }, timeout: 24d }"),
      ),
    ).toEqual([]);
  });
});
