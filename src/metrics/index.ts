/**
 * Prometheus metrics for the data plane, on a registry of our own (never prom-client's global one,
 * so two gateways in one process, as in tests, do not mix).
 *
 * Label cardinality is bounded by construction: `tenant` is a tenant id (at most `maxTenants`
 * distinct values, then "_other"; "_none" before authentication), `outcome` one of five classes,
 * `status_class` one of 1xx-5xx, and `code` one of the closed list of refusal codes.
 */
import { Counter, Histogram, Registry } from "prom-client";
import { type RefusalCode, refusalCodes } from "../gateway/refusal.ts";
import type { RequestContext, RequestOutcome } from "../policies/policy.ts";

export interface Metrics {
  readonly registry: Registry;
  /** The data plane's observe hook: once per request, when it has ended. */
  observe(ctx: RequestContext, outcome: RequestOutcome): void;
}

const OUTCOME_CLASSES = new Set(["ok", "rejected", "upstream_error", "client_aborted"]);

export function createMetrics(options: { maxTenants?: number } = {}): Metrics {
  const maxTenants = options.maxTenants ?? 1000;
  const registry = new Registry();
  const requests = new Counter({
    name: "gatehouse_requests_total",
    help: "Requests handled by the data plane, by tenant, outcome class and status class.",
    labelNames: ["tenant", "outcome", "status_class"] as const,
    registers: [registry],
  });
  const refusals = new Counter({
    name: "gatehouse_refusals_total",
    help: "Requests the gateway refused, by tenant and refusal code.",
    labelNames: ["tenant", "code"] as const,
    registers: [registry],
  });
  const latency = new Histogram({
    name: "gatehouse_request_duration_seconds",
    help: "Time from arrival to the end of the response, by tenant and outcome class.",
    labelNames: ["tenant", "outcome"] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });

  const seen = new Set<string>();
  const tenantLabel = (id: string | undefined) => {
    if (id === undefined) return "_none";
    if (seen.has(id)) return id;
    if (seen.size >= maxTenants) return "_other";
    seen.add(id);
    return id;
  };

  return {
    registry,
    observe(ctx, outcome) {
      const tenant = tenantLabel(ctx.tenant?.id);
      const [head, code] = outcome.outcome.split(":", 2) as [string, string | undefined];
      const cls = OUTCOME_CLASSES.has(head) ? head : "other";
      requests.inc({ tenant, outcome: cls, status_class: statusClass(outcome.status) });
      if (cls === "rejected") {
        refusals.inc({ tenant, code: code && code in refusalCodes ? (code as RefusalCode) : "other" });
      }
      latency.observe({ tenant, outcome: cls }, Math.max(0, outcome.endedAt - ctx.startedAt) / 1000);
    },
  };
}

function statusClass(status: number): string {
  return status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : "other";
}
