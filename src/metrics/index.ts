/**
 * Metrics for the data plane, counted where they happen and rendered elsewhere.
 *
 * Label cardinality is bounded by construction: `tenant` is a tenant id (at most `maxTenants`
 * distinct values, then "_other"; "_none" before authentication), `route` a route's `match` text and
 * `upstream` an upstream's name (both come from the config; at most `maxRoutes` / `maxUpstreams`
 * values across reloads, then "_other"), `outcome` one of five classes, `status_class` one of
 * 1xx-5xx, `code` one of the closed list of refusal codes `cause` one of the upstream failures, and for requests a shadow policy would have refused, `code`
 * one of the three codes a shadow can give.
 *
 * `observe` runs once per request, so it only bumps numbers in typed arrays; prom-client, whose
 * labelled inc/observe hash a label object on every call (about 1 µs per request for the three
 * metrics), is fed from those arrays when /metrics is scraped (registry.ts), which is loaded with the
 * control API on its first request rather than at start-up.
 */

import type { ClusterReading } from "../cluster/redis/health.ts";
import { type RefusalCode, refusalCodes } from "../gateway/refusal.ts";
import { UPSTREAM_FAILURES, type UpstreamFailure } from "../gateway/upstream-failure.ts";
import type { RequestContext, RequestOutcome } from "../policies/policy.ts";

export interface Metrics {
  /** Everything counted so far, by `tenant` label value. */
  readonly stats: ReadonlyMap<string, TenantStats>;
  /** By `route` label value. */
  readonly routes: ReadonlyMap<string, RouteStats>;
  /** By `upstream` label value. */
  readonly upstreams: ReadonlyMap<string, UpstreamStats>;
  /** Counts other parts keep, read when /metrics is scraped. */
  readonly readings: Readings;
  /** The data plane's observe hook: once per request, when it has ended. */
  observe(ctx: RequestContext, outcome: RequestOutcome): void;
  /** Once per failed upstream request (the proxy's onFailure). */
  upstreamFailed(upstream: string, cause: UpstreamFailure): void;
  /** Zeroes every count (prom-client's registry.resetMetrics()). */
  reset(): void;
}

/** Counters kept by their owners; each is optional so that a partial gateway (tests) renders too. */
export interface Readings {
  /** Config reloads, from the file or the control API, by result. */
  reloads?: () => { ok: number; refused: number };
  keyCache?: () => { entries: number; hits: number; misses: number };
  /** Lines handed to the access log's destination, and lines dropped because it was slow or broken. */
  accessLog?: () => { written: number; dropped: number };
  /** A cluster's shared counters; without them their series are left out. */
  cluster?: () => ClusterReading;
  /** Data-plane threads (server.threads > 1): requests each has counted, by thread index. */
  threads?: () => readonly number[];
  /** Cluster mode's shared objects and usage in PostgreSQL; without them their series are left out. */
  postgres?: () => PostgresReading;
}

export interface PostgresReading {
  reachable: boolean;
  /** The version of the shared objects this node serves. */
  version: number;
  /** Shared objects this node's config cannot serve yet. */
  waiting: number;
  /** Distinct config files among the nodes alive in the last 15 s (1 when they agree). */
  configs: number;
  /** Usage rows in this node's database that PostgreSQL does not have yet (about). */
  unshipped: number;
}

export const OUTCOMES = ["ok", "rejected", "upstream_error", "client_aborted", "other"] as const;
const OTHER_OUTCOME = OUTCOMES.length - 1;
const REJECTED = 1;
const CLIENT_ABORTED = 3;
const outcomeIndex = new Map<string, number>(OUTCOMES.slice(0, OTHER_OUTCOME).map((o, i) => [o, i]));

export const STATUS_CLASSES = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"] as const;

export const CODES = [...(Object.keys(refusalCodes) as RefusalCode[]), "other"] as const;
const codeIndex = new Map<string, number>(CODES.map((c, i) => [c, i]));
const OTHER_CODE = CODES.length - 1;

/** The codes a shadow rule, limit or quota would refuse with. */
export const WOULD_REFUSE = ["forbidden", "rate_limited", "quota_exhausted"] as const;
const wouldRefuseIndex = new Map<string, number>(WOULD_REFUSE.map((c, i) => [c, i]));

export const BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** The upstream's time to response headers is measured in fractions of a millisecond. */
export const UPSTREAM_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];
const causeIndex = new Map<string, number>(UPSTREAM_FAILURES.map((c, i) => [c, i]));

/** Everything counted for one `tenant` label value. Zero entries are never exported. */
export class TenantStats {
  /** [outcome class × status class] → requests. */
  readonly requests = new Float64Array(OUTCOMES.length * STATUS_CLASSES.length);
  /** [code] → refusals. */
  readonly refusals = new Float64Array(CODES.length);
  /** [WOULD_REFUSE code] → requests a shadow policy would have refused. */
  readonly wouldRefuse = new Float64Array(WOULD_REFUSE.length);
  /** [outcome class × bucket] → observations in that bucket alone (cumulated when exported). */
  readonly buckets = new Float64Array(OUTCOMES.length * BUCKETS.length);
  readonly sum = new Float64Array(OUTCOMES.length);
  readonly count = new Float64Array(OUTCOMES.length);
}

export class RouteStats {
  /** [outcome class × status class] → requests. */
  readonly requests = new Float64Array(OUTCOMES.length * STATUS_CLASSES.length);
}

export class UpstreamStats {
  /** [status class] → responses the upstream gave. */
  readonly responses = new Float64Array(STATUS_CLASSES.length);
  /** [bucket] → times to response headers in that bucket alone; then the sum and the count. */
  readonly buckets = new Float64Array(UPSTREAM_BUCKETS.length);
  readonly sumCount = new Float64Array(2);
  /** [cause] → failed requests. */
  readonly failures = new Float64Array(UPSTREAM_FAILURES.length);
}

/**
 * Label values for ids: the first `max` ids seen keep a label of their own, the rest share "_other".
 * Special labels ("_none") never count against the cap.
 */
class BoundedLabels<S> {
  /** By label value. */
  readonly stats = new Map<string, S>();
  /** By id: the ids that got a label of their own. */
  private readonly byId = new Map<string, S>();

  constructor(
    private readonly make: () => S,
    private readonly max: number,
  ) {}

  labelled(label: string): S {
    let s = this.stats.get(label);
    if (s === undefined) {
      s = this.make();
      this.stats.set(label, s);
    }
    return s;
  }

  of(id: string): S {
    let s = this.byId.get(id);
    if (s !== undefined) return s;
    if (this.byId.size >= this.max) return this.labelled("_other");
    s = this.labelled(id);
    this.byId.set(id, s);
    return s;
  }
}

export function createMetrics(
  options: { maxTenants?: number; maxRoutes?: number; maxUpstreams?: number; readings?: Readings } = {},
): Metrics {
  const tenants = new BoundedLabels(() => new TenantStats(), options.maxTenants ?? 1000);
  const routes = new BoundedLabels(() => new RouteStats(), options.maxRoutes ?? 1000);
  const upstreams = new BoundedLabels(() => new UpstreamStats(), options.maxUpstreams ?? 1000);

  return {
    stats: tenants.stats,
    routes: routes.stats,
    upstreams: upstreams.stats,
    readings: options.readings ?? {},
    observe(ctx, outcome) {
      const s = ctx.tenant === undefined ? tenants.labelled("_none") : tenants.of(ctx.tenant.id);
      const [head, code] = outcome.outcome.split(":", 2) as [string, string | undefined];
      const cls = outcomeIndex.get(head) ?? OTHER_OUTCOME;
      const status = statusClass(outcome.status);
      const request = cls * STATUS_CLASSES.length + status;
      s.requests[request]!++;
      if (cls === REJECTED)
        s.refusals[(code === undefined ? undefined : codeIndex.get(code)) ?? OTHER_CODE]!++;
      if (ctx.wouldRefuse) {
        for (const c of ctx.wouldRefuse) {
          const i = wouldRefuseIndex.get(c);
          if (i !== undefined) s.wouldRefuse[i]!++;
        }
      }
      const seconds = Math.max(0, outcome.endedAt - ctx.startedAt) / 1000;
      const b = bucketOf(BUCKETS, seconds);
      if (b < BUCKETS.length) s.buckets[cls * BUCKETS.length + b]!++;
      s.sum[cls]! += seconds;
      s.count[cls]!++;

      const route = ctx.route === undefined ? routes.labelled("_none") : routes.of(ctx.route.match);
      route.requests[request]!++;
      // The upstream answered when its time to headers is known, except for gatehouse's own 499: the
      // client left before the upstream's headers arrived.
      const { upstreamMs } = outcome;
      if (
        ctx.upstream !== undefined &&
        upstreamMs !== null &&
        !(cls === CLIENT_ABORTED && outcome.status === 499)
      ) {
        const u = upstreams.of(ctx.upstream.name);
        u.responses[status]!++;
        const upstreamSeconds = Math.max(0, upstreamMs) / 1000;
        const ub = bucketOf(UPSTREAM_BUCKETS, upstreamSeconds);
        if (ub < UPSTREAM_BUCKETS.length) u.buckets[ub]!++;
        u.sumCount[0]! += upstreamSeconds;
        u.sumCount[1]!++;
      }
    },
    upstreamFailed(upstream, cause) {
      upstreams.of(upstream).failures[causeIndex.get(cause) ?? UPSTREAM_FAILURES.length - 1]!++;
    },
    reset() {
      for (const s of tenants.stats.values())
        for (const a of [s.requests, s.refusals, s.wouldRefuse, s.buckets, s.sum, s.count]) a.fill(0);
      for (const s of routes.stats.values()) s.requests.fill(0);
      for (const s of upstreams.stats.values())
        for (const a of [s.responses, s.buckets, s.sumCount, s.failures]) a.fill(0);
    },
  };
}

/** As prom-client does: the first bucket whose bound is ≥ the value; above the last, only +Inf. */
function bucketOf(bounds: readonly number[], value: number): number {
  let b = 0;
  while (b < bounds.length && value > bounds[b]!) b++;
  return b;
}

/** 1xx..5xx as 0..4, anything else 5 ("other"). */
function statusClass(status: number): number {
  return status >= 100 && status < 600 ? Math.floor(status / 100) - 1 : STATUS_CLASSES.length - 1;
}
