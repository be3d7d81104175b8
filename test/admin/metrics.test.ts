import { describe, expect, test } from "bun:test";
import { healthyStatus, STORE_FAULTS, type StoreStatus } from "../../src/db/store-health.ts";
import type { TenantView } from "../../src/gateway/snapshot.ts";
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
    expect(text).toContain('gatehouse_refusals_total{tenant="acme",code="rate_limited"} 1');
    expect(text).not.toContain("toString");
  });

  test("scrapes are repeatable and counts keep growing between them", async () => {
    const m = createMetrics();
    m.observe(ctx(), outcome("rejected:unauthorized", 401));
    const first = await metricsRegistry(m).metrics();
    expect(await metricsRegistry(m).metrics()).toBe(first);
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
    };
    text = await registry.metrics();
    expect(text).toContain("gatehouse_store_healthy 0");
    expect(text).toContain('gatehouse_store_fault{reason="full"} 1');
    expect(text).toContain('gatehouse_store_fault{reason="locked"} 0');
    expect(text).toContain("gatehouse_usage_rows_buffered 1234");
    expect(text).toContain("gatehouse_usage_rows_dropped_total 5");
    // Only the reasons of the closed list are ever labels.
    expect(text.match(/gatehouse_store_fault\{/g)).toHaveLength(STORE_FAULTS.length);
  });
});
