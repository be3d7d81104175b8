import { describe, expect, test } from "bun:test";
import type { TenantView } from "../../src/gateway/snapshot.ts";
import { createMetrics } from "../../src/metrics/index.ts";
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
    const text = await m.registry.metrics();
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
    const text = await m.registry.metrics();
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
    expect(await b.registry.metrics()).not.toContain('tenant="acme"');
  });
});
