/**
 * Upstream failures against real sockets: each cause is told apart from what Bun's fetch throws,
 * logged with the upstream's name and the request id (never its URL or injected headers), at most
 * once per upstream and cause every 10 s with a count, and counted in /metrics. Timeouts run on
 * test mode's clock.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Socket, TCPSocketListener } from "bun";
import { classifyUpstreamFailure } from "../../src/gateway/upstream-failure.ts";
import { startTestGateway, type TestGateway } from "../support/gateway.ts";

interface Line {
  level: string;
  msg: string;
  fields: Record<string, unknown>;
}

/** A TCP server that hands every connection's first bytes to `onData`; `connected` resolves on each. */
function rawUpstream(onData: (s: Socket<undefined>) => void) {
  let arrived: () => void = () => {};
  let next = new Promise<void>((r) => {
    arrived = r;
  });
  const server: TCPSocketListener<undefined> = Bun.listen({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      data(s) {
        onData(s);
        arrived();
        next = new Promise<void>((r) => {
          arrived = r;
        });
      },
    },
  });
  return { server, port: server.port, arrived: () => next };
}

const CREDENTIAL = "upstream-credential-7f3a";

// The HTTP/1.1 client and Bun's fetch fail alike: the same causes and codes from the same sockets.
describe.each([
  ["the HTTP/1.1 client", undefined],
  ["Bun's fetch", fetch],
] as const)("through %s", (_, client) => {
  let gw: TestGateway;
  const lines: Line[] = [];
  let closedPort: number;
  const servers: TCPSocketListener<undefined>[] = [];
  let hang: ReturnType<typeof rawUpstream>;
  let stall: ReturnType<typeof rawUpstream>;

  beforeAll(() => {
    const closed = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    closedPort = closed.port;
    closed.stop(true);
    // Headers and part of a declared body, then a reset.
    const breaks = rawUpstream((s) => {
      s.write("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial");
      s.flush();
      s.terminate();
    });
    // Closes without a word.
    const drops = rawUpstream((s) => s.end());
    // Speaks plain HTTP where https is configured.
    const plain = rawUpstream((s) => {
      s.write("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
      s.end();
    });
    hang = rawUpstream(() => {});
    stall = rawUpstream((s) => {
      s.write("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n");
      s.flush();
    });
    servers.push(breaks.server, drops.server, plain.server, hang.server, stall.server);
    const url = (port: number, scheme = "http") => `${scheme}://127.0.0.1:${port}`;
    const headers = `headers: { authorization: "Bearer ${CREDENTIAL}" }`;
    gw = startTestGateway(
      `version: 1
upstreams:
  refused: { url: "${url(closedPort)}", ${headers} }
  breaks: { url: "${url(breaks.port)}", ${headers} }
  drops: { url: "${url(drops.port)}", ${headers} }
  tls: { url: "${url(plain.port, "https")}", ${headers} }
  hang: { url: "${url(hang.port)}", timeout: 2s, ${headers} }
  stall: { url: "${url(stall.port)}", idleTimeout: 3s, ${headers} }
plans:
  all: { rules: [{ allow: "* /**" }] }
routes:
  - { match: "* /refused/**", upstream: refused }
  - { match: "* /breaks/**", upstream: breaks }
  - { match: "* /drops/**", upstream: drops }
  - { match: "* /tls/**", upstream: tls }
  - { match: "* /hang/**", upstream: hang }
  - { match: "* /stall/**", upstream: stall }
tenants:
  acme:
    plan: all
    keys: [{ id: acme-key, secret: acme-secret-0001 }]
`,
      {
        testClockStart: Date.UTC(2027, 0, 1),
        log: (level, msg, fields = {}) => lines.push({ level, msg, fields }),
        ...(client ? { fetch: client } : {}),
      },
    );
  });
  afterAll(async () => {
    await gw.close();
    for (const s of servers) s.stop(true);
  });

  const get = (path: string) => fetch(gw.dataUrl + path, { headers: { "x-api-key": "acme-secret-0001" } });
  const advance = (by: string) =>
    fetch(`${gw.adminUrl}/clock`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ advance: by }),
    });
  const failures = (upstream: string) =>
    lines.filter((l) => l.msg === "upstream request failed" && l.fields.upstream === upstream);

  describe("upstream failures, each with its cause", () => {
    test.each([
      ["refused", "connection_refused", "ECONNREFUSED", 502],
      ["breaks", "body_interrupted", "ECONNRESET", 502],
      ["drops", "connection_reset", "ECONNRESET", 502],
      ["tls", "tls", "EPROTO", 502],
    ] as const)("%s: %s (%s), answered %d", async (upstream, cause, code, status) => {
      const res = await get(`/${upstream}/x`);
      expect(res.status).toBe(status);
      const logged = failures(upstream);
      expect(logged).toHaveLength(1);
      expect(logged[0]!.level).toBe("warn");
      expect(logged[0]!.fields).toEqual({
        upstream,
        cause,
        error: code,
        requestId: res.headers.get("x-request-id")!,
        count: 1,
      });
    });

    test("first-byte timeout, on the clock", async () => {
      const pending = get("/hang/x");
      await hang.arrived();
      await advance("2s");
      const res = await pending;
      expect(res.status).toBe(504);
      expect(failures("hang").map((l) => l.fields)).toEqual([
        {
          upstream: "hang",
          cause: "first_byte_timeout",
          requestId: res.headers.get("x-request-id")!,
          count: 1,
        },
      ]);
    });

    test("idle timeout while the body streams, on the clock", async () => {
      const pending = get("/stall/x");
      await stall.arrived();
      const res = await pending;
      expect(res.status).toBe(200);
      const reader = res.body!.getReader();
      expect(new TextDecoder().decode((await reader.read()).value)).toBe("first");
      await advance("3s");
      await expect(reader.read()).rejects.toThrow();
      expect(failures("stall").map((l) => l.fields)).toEqual([
        { upstream: "stall", cause: "idle_timeout", requestId: res.headers.get("x-request-id")!, count: 1 },
      ]);
    });

    test("no line holds the upstream's URL or its injected credential", () => {
      const text = JSON.stringify(lines);
      expect(text).not.toContain(CREDENTIAL);
      expect(text).not.toContain("127.0.0.1");
    });

    test("a dead upstream is logged once per 10 s with a count and the last request id", async () => {
      const before = failures("refused").length;
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) ids.push((await get("/refused/y")).headers.get("x-request-id")!);
      // The period opened by the first failure (in the first test) is still running: nothing new yet.
      expect(failures("refused")).toHaveLength(before);
      await advance("10s");
      const summary = failures("refused").slice(before);
      expect(summary.map((l) => l.fields)).toEqual([
        {
          upstream: "refused",
          cause: "connection_refused",
          error: "ECONNREFUSED",
          requestId: ids[3]!,
          count: 4,
        },
      ]);
      // A quiet period ends the episode without a line; the next failure is logged at once.
      await advance("10s");
      expect(failures("refused")).toHaveLength(before + 1);
      const res = await get("/refused/z");
      expect(failures("refused").at(-1)!.fields).toMatchObject({
        count: 1,
        requestId: res.headers.get("x-request-id")!,
      });
    });

    test("/metrics counts them by upstream and cause", async () => {
      const text = await (await fetch(`${gw.adminUrl}/metrics`)).text();
      for (const [upstream, cause, n] of [
        ["refused", "connection_refused", 6],
        ["breaks", "body_interrupted", 1],
        ["drops", "connection_reset", 1],
        ["tls", "tls", 1],
        ["hang", "first_byte_timeout", 1],
        ["stall", "idle_timeout", 1],
      ] as const) {
        expect(text).toContain(
          `gatehouse_upstream_failures_total{upstream="${upstream}",cause="${cause}"} ${n}`,
        );
      }
    });
  });
});

describe("classifyUpstreamFailure", () => {
  const err = (code: string) => Object.assign(new TypeError("x"), { code });
  test("codes Bun's fetch and the OS use, and the stage", () => {
    expect(classifyUpstreamFailure(err("ENOTFOUND"), "headers", false)).toBe("dns");
    expect(classifyUpstreamFailure(err("EAI_AGAIN"), "headers", false)).toBe("dns");
    expect(classifyUpstreamFailure(err("DEPTH_ZERO_SELF_SIGNED_CERT"), "headers", false)).toBe("tls");
    expect(classifyUpstreamFailure(err("CERT_HAS_EXPIRED"), "headers", false)).toBe("tls");
    expect(classifyUpstreamFailure(err("ConnectionRefused"), "headers", false)).toBe("connection_refused");
    expect(classifyUpstreamFailure(err("EHOSTUNREACH"), "headers", false)).toBe("other");
    expect(classifyUpstreamFailure(new Error("no code"), "headers", false)).toBe("other");
    expect(classifyUpstreamFailure(err("ECONNRESET"), "body", false)).toBe("body_interrupted");
    expect(classifyUpstreamFailure(err("AbortError"), "body", true)).toBe("idle_timeout");
    expect(classifyUpstreamFailure(err("AbortError"), "headers", true)).toBe("first_byte_timeout");
    expect(classifyUpstreamFailure(err("HPE_INVALID_RESPONSE"), "headers", false)).toBe("invalid_response");
    expect(classifyUpstreamFailure(err("HPE_HEADER_OVERFLOW"), "headers", false)).toBe("invalid_response");
    expect(classifyUpstreamFailure(err("HPE_INVALID_RESPONSE"), "body", false)).toBe("invalid_response");
  });
});
