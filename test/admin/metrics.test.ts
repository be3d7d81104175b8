import { describe, expect, test } from "bun:test";
import { healthyStatus, STORE_FAULTS, type StoreStatus } from "../../src/db/store-health.ts";
import type { CompiledRoute, TenantView } from "../../src/gateway/snapshot.ts";
import type { UpstreamTarget } from "../../src/gateway/upstream.ts";
import { createMetrics } from "../../src/metrics/index.ts";
import { metricsRegistry } from "../../src/metrics/registry.ts";
import type { RequestContext, RequestOutcome } from "../../src/policies/policy.ts";

const ctx = (tenant?: string, startedAt = 1000) =>
  ({ startedAt, tenant: tenant ? ({ id: tenant } as TenantView) : undefined }) as RequestContext;
const outcome = (o: string, status: number, endedAt = 1250): RequestOutcome => ({
  outcome: o,
  status,
  endedAt,
  bytesIn: 0,
  bytesOut: 0,
  upstreamMs: null,
  cost: 0,
  billed: 0,
});

describe("createMetrics", () => {
  test("latency is endedAt − startedAt, in seconds", async () => {
    const m = createMetrics();
    m.observe(ctx("acme"), outcome("ok", 200));
    const text = await metricsRegistry(m).metrics();
    expect(text).toContain('gatehouse_request_duration_seconds_sum{tenant="acme",outcome="ok"} 0.25');
    expect(text).toContain(
      'gatehouse_request_duration_seconds_bucket{le="0.25",tenant="acme",outcome="ok"} 1',
    );
    expect(text).toContain(
      'gatehouse_request_duration_seconds_bucket{le="0.1",tenant="acme",outcome="ok"} 0',
    );
  });

  test("labels stay bounded: tenants are capped, outcomes and codes come from closed lists", async () => {
    const m = createMetrics({ maxTenants: 2 });
    for (const t of ["t1", "t2", "t3", "t4"]) m.observe(ctx(t), outcome("ok", 200));
    m.observe(ctx("t1"), outcome("rejected:made_up_code", 429));
    m.observe(ctx("t1"), outcome("surprise", 999));
    m.observe(ctx("t2"), outcome("upstream_error", 502));
    m.observe(ctx("t2"), outcome("client_aborted", 200));
    const text = await metricsRegistry(m).metrics();
    expect(text).toContain('gatehouse_requests_total{tenant="_other",outcome="ok",status_class="2xx"} 2');
    expect(text).not.toContain('tenant="t3"');
    expect(text).toContain('gatehouse_refusals_total{tenant="t1",code="other"} 1');
    expect(text).toContain('gatehouse_requests_total{tenant="t1",outcome="other",status_class="other"} 1');
    expect(text).toContain(
      'gatehouse_requests_total{tenant="t2",outcome="upstream_error",status_class="5xx"} 1',
    );
    expect(text).toContain(
      'gatehouse_requests_total{tenant="t2",outcome="client_aborted",status_class="2xx"} 1',
    );
  });

  test("each instance has its own registry", async () => {
    const a = createMetrics();
    const b = createMetrics();
    a.observe(ctx("acme"), outcome("ok", 200));
    expect(await metricsRegistry(b).metrics()).not.toContain('tenant="acme"');
  });
});

describe("createMetrics, counted off prom-client's hot path", () => {
  test("renders cumulative buckets, +Inf, sum and count per tenant and outcome", async () => {
    const m = createMetrics();
    m.observe(ctx("acme", 0), outcome("ok", 200, 3)); // 0.003 s
    m.observe(ctx("acme", 0), outcome("ok", 200, 5)); // exactly a bound: counted in it
    m.observe(ctx("acme", 0), outcome("ok", 200, 45_000)); // above every bound: +Inf only
    m.observe(ctx("acme", 10), outcome("upstream_error", 504, 5)); // negative: counted as 0
    const text = await metricsRegistry(m).metrics();
    const line = (le: string, o = "ok") =>
      `gatehouse_request_duration_seconds_bucket{le="${le}",tenant="acme",outcome="${o}"}`;
    expect(text).toContain(`${line("0.001")} 0`);
    expect(text).toContain(`${line("0.005")} 2`);
    expect(text).toContain(`${line("30")} 2`);
    expect(text).toContain(`${line("+Inf")} 3`);
    expect(text).toContain('gatehouse_request_duration_seconds_sum{tenant="acme",outcome="ok"} 45.008');
    expect(text).toContain('gatehouse_request_duration_seconds_count{tenant="acme",outcome="ok"} 3');
    expect(text).toContain(`${line("0.001", "upstream_error")} 1`);
    expect(text).toContain('gatehouse_requests_total{tenant="acme",outcome="ok",status_class="2xx"} 3');
    expect(text).not.toContain('outcome="rejected"');
  });

  test("refusal codes come from the closed list only, never from Object.prototype", async () => {
    const m = createMetrics();
    m.observe(ctx("acme"), outcome("rejected:toString", 400));
    m.observe(ctx("acme"), outcome("rejected:", 400));
    m.observe(ctx("acme"), outcome("rejected:rate_limited", 429));
    const text = await metricsRegistry(m).metrics();
    expect(text).toContain('gatehouse_refusals_total{tenant="acme",code="other"} 2');
    // The label is the problem type's name, as clients see it (urn:gatehouse:problem:rate-limited).
    expect(text).toContain('gatehouse_refusals_total{tenant="acme",code="rate-limited"} 1');
    expect(text).not.toContain("rate_limited");
    expect(text).not.toContain("toString");
  });

  test("scrapes are repeatable and counts keep growing between them", async () => {
    const m = createMetrics();
    m.observe(ctx(), outcome("rejected:unauthorized", 401));
    // Process metrics (CPU, memory) move between scrapes; gatehouse's own series do not.
    const own = async () =>
      (await metricsRegistry(m).metrics())
        .split("\n")
        .filter((l) => l.startsWith("gatehouse_"))
        .join("\n");
    const first = await own();
    expect(first).toContain("gatehouse_requests_total");
    expect(await own()).toBe(first);
    m.observe(ctx(), outcome("rejected:unauthorized", 401));
    const text = await metricsRegistry(m).metrics();
    expect(text).toContain(
      'gatehouse_requests_total{tenant="_none",outcome="rejected",status_class="4xx"} 2',
    );
    expect(text).toContain('gatehouse_refusals_total{tenant="_none",code="unauthorized"} 2');
    metricsRegistry(m).resetMetrics();
    expect(await metricsRegistry(m).metrics()).not.toContain('tenant="_none"');
  });
});

describe("store health", () => {
  test("healthy, fault by reason, rows buffered and dropped follow the writer thread's report", async () => {
    let status: StoreStatus = healthyStatus;
    const registry = metricsRegistry(createMetrics(), () => status);
    let text = await registry.metrics();
    expect(text).toContain("gatehouse_store_healthy 1");
    expect(text).toContain('gatehouse_store_fault{reason="full"} 0');
    expect(text).toContain("gatehouse_usage_rows_buffered 0");
    status = {
      ...healthyStatus,
      healthy: false,
      fault: "full",
      error: "SQLITE_FULL",
      buffered: 1234,
      dropped: 5,
      retries: 17,
      waiting: 3,
    };
    text = await registry.metrics();
    expect(text).toContain("gatehouse_store_healthy 0");
    expect(text).toContain('gatehouse_store_fault{reason="full"} 1');
    expect(text).toContain('gatehouse_store_fault{reason="locked"} 0');
    expect(text).toContain("gatehouse_usage_rows_buffered 1234");
    expect(text).toContain("gatehouse_usage_rows_dropped_total 5");
    expect(text).toContain("gatehouse_usage_write_retries_total 17");
    expect(text).toContain("gatehouse_store_writes_waiting 3");
    // Only the reasons of the closed list are ever labels.
    expect(text.match(/gatehouse_store_fault\{/g)).toHaveLength(STORE_FAULTS.length);
  });
});

describe("routes and upstreams", () => {
  const routed = (route: string, upstream: string, startedAt = 1000) =>
    ({
      startedAt,
      tenant: { id: "acme" } as TenantView,
      route: { match: route } as CompiledRoute,
      upstream: { name: upstream } as UpstreamTarget,
    }) as RequestContext;

  test("upstream latency counts answers only, in sub-millisecond buckets; a client gone before them is not one", async () => {
    const m = createMetrics();
    m.observe(routed("* /v1/**", "api"), { ...outcome("ok", 200), upstreamMs: 0.3 });
    m.observe(routed("* /v1/**", "api"), { ...outcome("ok", 503), upstreamMs: 0.7 });
    // Gone after the upstream's headers (its status stands), and before them (gatehouse's own 499).
    m.observe(routed("* /v1/**", "api"), { ...outcome("client_aborted", 200), upstreamMs: 40 });
    m.observe(routed("* /v1/**", "api"), { ...outcome("client_aborted", 499), upstreamMs: 9 });
    m.observe(routed("* /v1/**", "api"), outcome("upstream_error", 502));
    const text = await metricsRegistry(m).metrics();
    const bucket = (le: string) => `gatehouse_upstream_duration_seconds_bucket{le="${le}",upstream="api"}`;
    expect(text).toContain(`${bucket("0.0005")} 1`);
    expect(text).toContain(`${bucket("0.001")} 2`);
    expect(text).toContain(`${bucket("0.05")} 3`);
    expect(text).toContain('gatehouse_upstream_duration_seconds_count{upstream="api"} 3');
    expect(text).toContain('gatehouse_upstream_responses_total{upstream="api",status_class="2xx"} 2');
    expect(text).toContain('gatehouse_upstream_responses_total{upstream="api",status_class="5xx"} 1');
    expect(text).toContain(
      'gatehouse_route_requests_total{route="* /v1/**",outcome="client_aborted",status_class="4xx"} 1',
    );
  });

  test("route and upstream labels are capped like tenants", async () => {
    const m = createMetrics({ maxRoutes: 1, maxUpstreams: 1 });
    m.observe(routed("GET /a", "one"), { ...outcome("ok", 200), upstreamMs: 1 });
    m.observe(routed("GET /b", "two"), { ...outcome("ok", 200), upstreamMs: 1 });
    m.upstreamFailed("three", "tls");
    m.upstreamFailed("one", "made-up" as never);
    const text = await metricsRegistry(m).metrics();
    expect(text).toContain(
      'gatehouse_route_requests_total{route="_other",outcome="ok",status_class="2xx"} 1',
    );
    expect(text).toContain('gatehouse_upstream_responses_total{upstream="_other",status_class="2xx"} 1');
    expect(text).toContain('gatehouse_upstream_failures_total{upstream="_other",cause="tls"} 1');
    expect(text).toContain('gatehouse_upstream_failures_total{upstream="one",cause="other"} 1');
    expect(text).not.toContain('"two"');
  });
});

describe("readings", () => {
  test("reloads, the key cache and the access log are read from their owners at each scrape", async () => {
    const reloads = { ok: 2, refused: 1 };
    const m = createMetrics({
      readings: {
        reloads: () => reloads,
        keyCache: () => ({ entries: 4, hits: 10, misses: 6 }),
        accessLog: () => ({ written: 100, dropped: 7 }),
      },
    });
    let text = await metricsRegistry(m).metrics();
    expect(text).toContain('gatehouse_config_reloads_total{result="ok"} 2');
    expect(text).toContain('gatehouse_config_reloads_total{result="refused"} 1');
    expect(text).toContain("gatehouse_key_cache_entries 4");
    expect(text).toContain("gatehouse_key_cache_hits_total 10");
    expect(text).toContain("gatehouse_key_cache_misses_total 6");
    expect(text).toContain("gatehouse_access_log_lines_total 100");
    expect(text).toContain("gatehouse_access_log_dropped_total 7");
    reloads.ok = 3;
    text = await metricsRegistry(m).metrics();
    expect(text).toContain('gatehouse_config_reloads_total{result="ok"} 3');
  });
});
