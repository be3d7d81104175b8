/** GET /metrics of a running gateway, read as Prometheus text after real traffic. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import pkg from "../../package.json" with { type: "json" };
import { startTestGateway, type TestGateway } from "../support/gateway.ts";
import { type Family, parsePrometheus, sampleValue } from "../support/prometheus.ts";
import { type RecordingUpstream, startUpstream } from "../support/upstream.ts";

let up: RecordingUpstream;
let gw: TestGateway;
let deadPort: number;
const ACME = { "x-api-key": "acme-secret-0001" };

const config = (extra = "") => `version: 1
upstreams:
  up: { url: "${up.url}", timeout: 5s }
  dead: { url: "http://127.0.0.1:${deadPort}", timeout: 5s }
plans:
  basic:
    limits: [{ limit: 3, window: 1m }]
    rules: [{ allow: "* /v1/**" }, { allow: "GET /dead/**" }]
routes:
  - match: "* /v1/**"
    upstream: up
  - match: "GET /dead/**"
    upstream: dead
  - match: "* /admin/**"
    upstream: up
tenants:
  acme:
    plan: basic
    keys: [{ id: acme-key, secret: acme-secret-0001 }]
${extra}`;

/** Problem types of the refusals answered, as their last part (`rate-limited`), by tenant label. */
const refused: { tenant: string; name: string }[] = [];
let families: Map<string, Family>;

beforeAll(async () => {
  up = startUpstream();
  const closed = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  deadPort = closed.port;
  closed.stop(true);
  gw = startTestGateway(config(), { testClockStart: Date.UTC(2027, 0, 1) });
  const send = async (path: string, init: RequestInit = {}, tenant = "acme") => {
    const res = await fetch(gw.dataUrl + path, { headers: ACME, ...init });
    const body = await res.text();
    if (res.headers.get("content-type") === "application/problem+json" && res.status < 500) {
      refused.push({ tenant, name: JSON.parse(body).type.replace("urn:gatehouse:problem:", "") });
    }
    return res.status;
  };
  expect(await send("/v1/a")).toBe(200);
  expect(await send("/dead/x")).toBe(502);
  expect(await send("/admin/x")).toBe(403);
  expect(await send("/nowhere")).toBe(404);
  expect(await send("/v1/b")).toBe(200);
  expect(await send("/v1/c")).toBe(429);
  expect(await send("/v1/a", { headers: {} }, "_none")).toBe(401);
  // One reload that succeeds, one that is refused.
  expect((await fetch(`${gw.adminUrl}/config/reload`, { method: "POST" })).status).toBe(200);
  writeFileSync(gw.configPath, config("bogus: 1\n"));
  expect((await fetch(`${gw.adminUrl}/config/reload`, { method: "POST" })).status).not.toBe(200);
  families = parsePrometheus(await (await fetch(`${gw.adminUrl}/metrics`)).text());
});
afterAll(async () => {
  await gw.close();
  await up.stop();
});

const value = (name: string, labels: Record<string, string> = {}) => sampleValue(families, name, labels);

describe("GET /metrics", () => {
  test("is valid Prometheus text: HELP and TYPE for every sample, counters end in _total", () => {
    // parsePrometheus threw otherwise; this checks it saw the families at all.
    expect(families.size).toBeGreaterThan(20);
    for (const f of families.values()) expect(f.help.length).toBeGreaterThan(0);
  });

  test("refusal labels are the names in the problem types the clients got", () => {
    expect(refused.map((r) => r.name).sort()).toEqual([
      "forbidden",
      "not-found",
      "rate-limited",
      "unauthorized",
    ]);
    for (const { tenant, name } of refused) {
      expect(`${name}: ${value("gatehouse_refusals_total", { tenant, code: name })}`).toBe(`${name}: 1`);
    }
    const codes = families.get("gatehouse_refusals_total")!.samples.map((s) => s.labels.code);
    expect(codes.filter((c) => c!.includes("_"))).toEqual([]);
  });

  test("requests by route, with the route's match text as its label", () => {
    expect(
      value("gatehouse_route_requests_total", { route: "* /v1/**", outcome: "ok", status_class: "2xx" }),
    ).toBe(2);
    expect(
      value("gatehouse_route_requests_total", {
        route: "* /v1/**",
        outcome: "rejected",
        status_class: "4xx",
      }),
    ).toBe(1);
    expect(
      value("gatehouse_route_requests_total", {
        route: "GET /dead/**",
        outcome: "upstream_error",
        status_class: "5xx",
      }),
    ).toBe(1);
    expect(
      value("gatehouse_route_requests_total", {
        route: "* /admin/**",
        outcome: "rejected",
        status_class: "4xx",
      }),
    ).toBe(1);
    // Refused before a route was chosen: the 401 and the 404.
    expect(value("gatehouse_route_requests_total", { route: "_none", outcome: "rejected" })).toBe(2);
  });

  test("upstream responses, failures by cause, and latency in seconds from half a millisecond", () => {
    expect(value("gatehouse_upstream_responses_total", { upstream: "up", status_class: "2xx" })).toBe(2);
    expect(
      value("gatehouse_upstream_failures_total", { upstream: "dead", cause: "connection_refused" }),
    ).toBe(1);
    const h = families.get("gatehouse_upstream_duration_seconds")!;
    expect(h.type).toBe("histogram");
    const les = h.samples.filter((s) => s.name.endsWith("_bucket")).map((s) => s.labels.le);
    expect(les.slice(0, 3)).toEqual(["0.0005", "0.001", "0.0025"]);
    expect(les.at(-1)).toBe("+Inf");
    expect(value("gatehouse_upstream_duration_seconds_count", { upstream: "up" })).toBe(2);
    // Seconds, not milliseconds: two local answers take well under a second each.
    expect(value("gatehouse_upstream_duration_seconds_sum", { upstream: "up" })!).toBeLessThan(2);
    expect(value("gatehouse_upstream_duration_seconds_count", { upstream: "dead" })).toBeUndefined();
  });

  test("reload outcomes, the key cache and the usage writer", () => {
    expect(value("gatehouse_config_reloads_total", { result: "ok" })).toBe(1);
    expect(value("gatehouse_config_reloads_total", { result: "refused" })).toBe(1);
    // One key, sent six times: hashed once after the start (and once after the reload cleared the
    // cache, which no request followed), then answered from the cache.
    expect(value("gatehouse_key_cache_misses_total")).toBe(1);
    expect(value("gatehouse_key_cache_hits_total")).toBe(5);
    expect(value("gatehouse_key_cache_entries")).toBe(0);
    // Test mode's clock stands still, so the usage writer's queue holds every row: 7 requests.
    expect(value("gatehouse_usage_rows_buffered")).toBe(7);
    for (const name of [
      "gatehouse_usage_rows_dropped_total",
      "gatehouse_usage_write_retries_total",
      "gatehouse_store_writes_waiting",
      "gatehouse_access_log_dropped_total",
    ])
      expect(`${name} ${value(name)}`).toBe(`${name} 0`);
  });

  test("build info, and process and runtime metrics that hold under Bun", () => {
    expect(value("gatehouse_build_info", { version: pkg.version, bun_version: Bun.version })).toBe(1);
    expect(value("process_cpu_seconds_total")!).toBeGreaterThan(0);
    expect(value("process_resident_memory_bytes")!).toBeGreaterThan(1_000_000);
    expect(value("process_open_fds")!).toBeGreaterThan(2);
    expect(value("process_max_fds")!).toBeGreaterThan(0);
    const started = value("process_start_time_seconds")!;
    // Rounded to the second by prom-client.
    expect(started).toBeLessThanOrEqual(Date.now() / 1000 + 1);
    expect(started).toBeGreaterThan(Date.now() / 1000 - 24 * 3600);
    expect(value("nodejs_heap_size_used_bytes")!).toBeGreaterThan(0);
    // Left out because they read wrong under Bun.
    expect(families.has("process_heap_bytes")).toBe(false);
    expect(families.has("nodejs_version_info")).toBe(false);
  });

  test("event-loop delay appears once it has been sampled, in seconds", async () => {
    let lag: number | undefined;
    // The monitor samples every 10 ms of real time; wait for samples rather than for a fixed time.
    for (let i = 0; i < 100 && lag === undefined; i++) {
      await Bun.sleep(20);
      const text = await (await fetch(`${gw.adminUrl}/metrics`)).text();
      lag = sampleValue(parsePrometheus(text), "nodejs_eventloop_lag_p99_seconds");
    }
    expect(lag).toBeGreaterThanOrEqual(0);
    expect(lag!).toBeLessThan(10);
  });
});
