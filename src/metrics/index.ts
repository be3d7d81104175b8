/**
 * Prometheus metrics for the data plane, on a registry of our own (never prom-client's global one,
 * so two gateways in one process, as in tests, do not mix).
 *
 * Label cardinality is bounded by construction: `tenant` is a tenant id (at most `maxTenants`
 * distinct values, then "_other"; "_none" before authentication), `outcome` one of five classes,
 * `status_class` one of 1xx-5xx, and `code` one of the closed list of refusal codes.
 *
 * `observe` runs once per request, so it only bumps numbers in per-tenant typed arrays; prom-client,
 * whose labelled inc/observe hash a label object on every call (about 1 µs per request for the three
 * metrics), is fed from those arrays when /metrics is scraped. The text it renders is unchanged.
 */
import { Counter, type Histogram, Registry } from "prom-client";
import { type RefusalCode, refusalCodes } from "../gateway/refusal.ts";
import type { RequestContext, RequestOutcome } from "../policies/policy.ts";

export interface Metrics {
  readonly registry: Registry;
  /** The data plane's observe hook: once per request, when it has ended. */
  observe(ctx: RequestContext, outcome: RequestOutcome): void;
}

const OUTCOMES = ["ok", "rejected", "upstream_error", "client_aborted", "other"] as const;
const OTHER_OUTCOME = OUTCOMES.length - 1;
const REJECTED = 1;
const outcomeIndex = new Map<string, number>(OUTCOMES.slice(0, OTHER_OUTCOME).map((o, i) => [o, i]));

const STATUS_CLASSES = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"] as const;

const CODES = [...(Object.keys(refusalCodes) as RefusalCode[]), "other"] as const;
const codeIndex = new Map<string, number>(CODES.map((c, i) => [c, i]));
const OTHER_CODE = CODES.length - 1;

const BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Everything counted for one `tenant` label value. Zero entries are never exported. */
class TenantStats {
  /** [outcome class × status class] → requests. */
  readonly requests = new Float64Array(OUTCOMES.length * STATUS_CLASSES.length);
  /** [code] → refusals. */
  readonly refusals = new Float64Array(CODES.length);
  /** [outcome class × bucket] → observations in that bucket alone (cumulated when exported). */
  readonly buckets = new Float64Array(OUTCOMES.length * BUCKETS.length);
  readonly sum = new Float64Array(OUTCOMES.length);
  readonly count = new Float64Array(OUTCOMES.length);
}

export function createMetrics(options: { maxTenants?: number } = {}): Metrics {
  const maxTenants = options.maxTenants ?? 1000;
  const registry = new Registry();
  /** By label value. */
  const stats = new Map<string, TenantStats>();
  /** By tenant id: the first `maxTenants` ids seen keep a label of their own. */
  const byTenant = new Map<string, TenantStats>();
  const labelled = (label: string): TenantStats => {
    let s = stats.get(label);
    if (s === undefined) {
      s = new TenantStats();
      stats.set(label, s);
    }
    return s;
  };
  const statsOf = (id: string | undefined): TenantStats => {
    if (id === undefined) return labelled("_none");
    let s = byTenant.get(id);
    if (s !== undefined) return s;
    if (byTenant.size >= maxTenants) return labelled("_other");
    s = labelled(id);
    byTenant.set(id, s);
    return s;
  };

  // Counters are rebuilt from the arrays on every scrape: reset, then one inc per non-zero series.
  new Counter({
    name: "gatehouse_requests_total",
    help: "Requests handled by the data plane, by tenant, outcome class and status class.",
    labelNames: ["tenant", "outcome", "status_class"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [tenant, s] of stats) {
        for (let i = 0; i < s.requests.length; i++) {
          const n = s.requests[i]!;
          if (n === 0) continue;
          const outcome = OUTCOMES[Math.floor(i / STATUS_CLASSES.length)]!;
          const status_class = STATUS_CLASSES[i % STATUS_CLASSES.length]!;
          this.inc({ tenant, outcome, status_class }, n);
        }
      }
    },
  });
  new Counter({
    name: "gatehouse_refusals_total",
    help: "Requests the gateway refused, by tenant and refusal code.",
    labelNames: ["tenant", "code"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [tenant, s] of stats) {
        for (let i = 0; i < s.refusals.length; i++) {
          if (s.refusals[i] !== 0) this.inc({ tenant, code: CODES[i]! }, s.refusals[i]);
        }
      }
    },
  });
  // prom-client's Histogram cannot be given bucket counts, only single observations, so the
  // histogram is a collector of our own in the shape prom-client's registry renders.
  registry.registerMetric(latencyCollector(stats) as unknown as Histogram);

  return {
    registry,
    observe(ctx, outcome) {
      const s = statsOf(ctx.tenant?.id);
      const [head, code] = outcome.outcome.split(":", 2) as [string, string | undefined];
      const cls = outcomeIndex.get(head) ?? OTHER_OUTCOME;
      s.requests[cls * STATUS_CLASSES.length + statusClass(outcome.status)]!++;
      if (cls === REJECTED)
        s.refusals[(code === undefined ? undefined : codeIndex.get(code)) ?? OTHER_CODE]!++;
      const seconds = Math.max(0, outcome.endedAt - ctx.startedAt) / 1000;
      // As prom-client does: the first bucket whose bound is ≥ the value; above the last, only +Inf.
      let b = 0;
      while (b < BUCKETS.length && seconds > BUCKETS[b]!) b++;
      if (b < BUCKETS.length) s.buckets[cls * BUCKETS.length + b]!++;
      s.sum[cls]! += seconds;
      s.count[cls]!++;
    },
  };
}

/** 1xx..5xx as 0..4, anything else 5 ("other"). */
function statusClass(status: number): number {
  return status >= 100 && status < 600 ? Math.floor(status / 100) - 1 : STATUS_CLASSES.length - 1;
}

interface Sample {
  labels: Record<string, string | number>;
  value: number;
  metricName: string;
}

function latencyCollector(stats: ReadonlyMap<string, TenantStats>) {
  const name = "gatehouse_request_duration_seconds";
  return {
    name,
    help: "Time from arrival to the end of the response, by tenant and outcome class.",
    type: "histogram",
    aggregator: "sum",
    /** registry.resetMetrics(): the counters are rebuilt from the same arrays, so all restart at 0. */
    reset() {
      for (const s of stats.values()) {
        for (const a of [s.requests, s.refusals, s.buckets, s.sum, s.count]) a.fill(0);
      }
    },
    async get() {
      const values: Sample[] = [];
      for (const [tenant, s] of stats) {
        for (let cls = 0; cls < OUTCOMES.length; cls++) {
          const count = s.count[cls]!;
          if (count === 0) continue;
          const outcome = OUTCOMES[cls]!;
          let acc = 0;
          for (let b = 0; b < BUCKETS.length; b++) {
            acc += s.buckets[cls * BUCKETS.length + b]!;
            values.push({
              labels: { le: BUCKETS[b]!, tenant, outcome },
              value: acc,
              metricName: `${name}_bucket`,
            });
          }
          values.push({
            labels: { le: "+Inf", tenant, outcome },
            value: count,
            metricName: `${name}_bucket`,
          });
          values.push({ labels: { tenant, outcome }, value: s.sum[cls]!, metricName: `${name}_sum` });
          values.push({ labels: { tenant, outcome }, value: count, metricName: `${name}_count` });
        }
      }
      return { name, help: this.help, type: this.type, values, aggregator: this.aggregator };
    },
  };
}
