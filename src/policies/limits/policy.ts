import type { Refusal, RefusalCode } from "../../gateway/refusal.ts";
import type { KeyView, TenantView } from "../../gateway/snapshot.ts";
import type { Clock } from "../../lib/clock.ts";
import { type Policy, type RequestContext, type RequestOutcome, recordWouldRefuse } from "../policy.ts";
import type { ConcurrencyGate } from "./concurrency.ts";
import { counterStates, limitAt, quotaAt } from "./counter-states.ts";
import { ceilSeconds, type FieldShape, fieldShape, limitsRefusal } from "./headers.ts";
import type { QuotaCounter, QuotaCounters } from "./quota-counters.ts";
import { capOf, type SlidingWindows } from "./sliding-windows.ts";
import {
  limitNeverFits,
  limitReached,
  quotaNeverFits,
  quotaUsedUp,
  retryIn,
  tooManyInFlight,
} from "./wording.ts";

/**
 * The counters the policy decides with: this thread's own (SlidingWindows, QuotaCounters,
 * ConcurrencyGate), or the ones data-plane threads share (src/threads), which the caller locks.
 */
export interface LimitsDeps {
  readonly clock: Clock;
  readonly windows: WindowCounters;
  readonly quotas: QuotaCounting;
  readonly concurrency: ConcurrencyCounting;
}

export type WindowCounters = Pick<
  SlidingWindows,
  "slot" | "used" | "add" | "charge" | "msUntilFits" | "msUntilEmpty"
>;
export type QuotaCounting = Pick<QuotaCounters, "counter" | "add" | "settle">;
export type ConcurrencyCounting = Pick<ConcurrencyGate, "tryAcquire" | "releaseOnce" | "count">;

/** One limit or quota as a request would find it, for explain. */
export interface CounterState {
  readonly kind: "window" | "quota";
  readonly name: string;
  /** Where it is declared, e.g. plans.free.limits[0]. */
  readonly declaredAt: string;
  readonly limit: number;
  /** Window length in ms, or the quota's period. */
  readonly per: number | "hour" | "day" | "month";
  readonly by: "tenant" | "key";
  /** A shadow limit or quota never refuses; `refuses` then says whether it would. */
  readonly mode: "enforce" | "shadow";
  /** Cost units counted now. */
  readonly used: number;
  /** What this request would add (0 when refused, or when this shadow would refuse it). */
  readonly adds: number;
  /** Whether this limit or quota alone would refuse it (a shadow: would, if enforced). */
  readonly refuses: boolean;
  /** When it would admit the request if nothing else came first, in ms from now; 0 if now, null if never. */
  readonly fitsInMs: number | null;
  /** For a quota: when its current period ends (epoch ms). */
  readonly resetsAt: number | null;
}

/** Which counters decide: this node's own, the shared ones in Redis, or onStoreError's mode while Redis is unreachable. */
export interface CountersExplanation {
  readonly decidedBy: "memory" | "redis" | "local" | "open" | "closed";
  /** The node count a local share divides by; null without a cluster. */
  readonly nodes: number | null;
}

/** What the limits policy would decide, without counting anything or taking a concurrency slot. */
export interface LimitsExplanation {
  readonly refusal: Refusal | undefined;
  /** Absent: this node's own counters (no cluster). */
  readonly store?: CountersExplanation;
  /** Codes of the shadow limits and quotas that would refuse the request, when it is admitted. */
  readonly wouldRefuse: RefusalCode[];
  readonly counters: CounterState[];
  readonly concurrency: {
    readonly limit: number;
    readonly inFlight: number;
    readonly refuses: boolean;
  } | null;
}

export interface LimitsPolicy extends Policy {
  explain(tenant: TenantView, key: KeyView, cost: number): LimitsExplanation;
}

interface Verdict {
  impossible?: { code: RefusalCode; detail: string };
  /** The limit or quota that makes the client wait longest. */
  code?: RefusalCode;
  waitMs: number;
  binding: string;
}

/**
 * Sliding-window limits (the tenant's, which hold the plan's and its own, then the key's), quotas and
 * the tenant's concurrency cap, decided in one synchronous step: judge every limit and quota, take a
 * concurrency slot, and only then count the cost everywhere. A refused request therefore costs
 * nothing anywhere. Key limits always count per key; tenant limits per tenant unless `by: "key"`.
 *
 * Shadow limits and quotas are judged like the others but never refuse. Each counts exactly what it
 * would have admitted had it alone been enforced: a request refused for real costs it nothing, and
 * one it would refuse passes, is recorded (`ctx.wouldRefuse`) and is not counted in it. So its count
 * and its would-refuse records are what enforcing it would have produced for the same traffic, and
 * switching it to enforce carries on from that count.
 *
 * Cost is counted at admission (`ctx.cost`, the route's cost). When the response ends (`onDone`):
 * - a measured cost above it (a route with `costFrom`) adds the difference, at the end's time, to
 *   every limit and quota that counted the request, over the limit if need be (post-paid: it is the
 *   next request that finds the balance spent);
 * - a quota gives back what the request is not billed (a failure the plan does not bill), if its
 *   period has not ended meanwhile. Sliding windows never give units back: rate limits protect
 *   capacity, which a failed request used too, and a window only ever gaining units keeps its
 *   guarantee (sliding-windows.ts) without further argument.
 *
 * A request costing more than a limit or quota allows can never pass: it is refused without
 * Retry-After (no wait would help) and its detail says so. Concurrency refusals carry no Retry-After
 * either: when an in-flight request ends is unknowable. Every other refusal's Retry-After is the
 * longest wait among the refusing limits and quotas, rounded up to whole seconds; after it every one
 * of them admits the same request (counts only fall as time passes), unless other requests came first.
 */
export function createLimitsPolicy(deps: LimitsDeps): LimitsPolicy {
  const { clock, windows, quotas, concurrency } = deps;
  // Reused across requests: handles live only within one synchronous check.
  const slots: number[] = [];
  const counters: QuotaCounter[] = [];
  /** Per limit, then per quota: whether it alone would refuse the request (set by `judge`). */
  const refusing: boolean[] = [];

  /** The RateLimit-Policy value and item prefixes only change with the views and quota periods. */
  const shapes = new WeakMap<KeyView, FieldShape>();

  function headers(tenant: TenantView, key: KeyView, now: number): [policy: string, state: string] {
    let shape = shapes.get(key);
    if (shape === undefined || shape.tenant !== tenant || now < shape.from || now >= shape.until) {
      shape = fieldShape(tenant, key, counters);
      shapes.set(key, shape);
    }
    const prefixes = shape.prefixes;
    let state = "";
    const nl = tenant.limits.length + key.limits.length;
    for (let i = 0; i < nl; i++) {
      if (prefixes[i] === null) continue;
      const s = slots[i]!;
      const left = Math.max(0, limitAt(tenant, key, i).limit - windows.used(s, now));
      state += `${prefixes[i]}${left};t=${ceilSeconds(windows.msUntilEmpty(s, now))}`;
    }
    for (let j = 0; j < tenant.quotas.length + key.quotas.length; j++) {
      if (prefixes[nl + j] === null) continue;
      const c = counters[j]!;
      const left = Math.max(0, quotaAt(tenant, key, j).limit - c.used);
      state += `${prefixes[nl + j]}${left};t=${ceilSeconds(c.periodEnd - now)}`;
    }
    return [shape.policy, state];
  }

  function refuse(
    tenant: TenantView,
    key: KeyView,
    responseHeaders: Map<string, string>,
    code: RefusalCode,
    detail: string,
    retryMs: number | null,
    now: number,
  ): Refusal {
    const counted = tenant.limits.length + key.limits.length + tenant.quotas.length + key.quotas.length;
    return limitsRefusal(
      code,
      detail,
      retryMs,
      counted > 0 ? headers(tenant, key, now) : null,
      responseHeaders,
    );
  }

  /**
   * Judges every limit and quota, leaving their handles in `slots` and `counters` and whether each
   * would refuse in `refusing`; counts nothing. The verdict is the enforced ones'.
   */
  function judge(tenant: TenantView, key: KeyView, cost: number, now: number): Verdict {
    const nl = tenant.limits.length + key.limits.length;
    const nq = tenant.quotas.length + key.quotas.length;
    const v: Verdict = { waitMs: 0, binding: "" };

    for (let i = 0; i < nl; i++) {
      const limit = limitAt(tenant, key, i);
      const perKey = i >= tenant.limits.length || limit.by === "key";
      const s = windows.slot(limit, perKey ? key.uid : tenant.uid, now, perKey);
      slots[i] = s;
      refusing[i] = false;
      if (cost === 0) continue;
      const cap = capOf(limit);
      if (cost > cap) {
        refusing[i] = true;
        if (limit.shadow) continue;
        v.impossible ??= { code: "rate_limited", detail: limitNeverFits(limit, cost) };
      } else if (windows.used(s, now) + cost > cap) {
        refusing[i] = true;
        if (limit.shadow) continue;
        const ms = windows.msUntilFits(s, cap, cost, now);
        if (ms >= v.waitMs) {
          v.code = "rate_limited";
          v.waitMs = ms;
          v.binding = limitReached(limit);
        }
      }
    }

    for (let j = 0; j < nq; j++) {
      const q = quotaAt(tenant, key, j);
      const c = quotas.counter(q, q.by === "key" ? key.uid : tenant.uid, now);
      counters[j] = c;
      refusing[nl + j] = false;
      if (cost === 0) continue;
      if (cost > q.limit) {
        refusing[nl + j] = true;
        if (q.shadow) continue;
        v.impossible ??= { code: "quota_exhausted", detail: quotaNeverFits(q, cost) };
      } else if (c.used + cost > q.limit) {
        refusing[nl + j] = true;
        if (q.shadow) continue;
        const ms = c.periodEnd - now;
        if (ms >= v.waitMs) {
          v.code = "quota_exhausted";
          v.waitMs = ms;
          v.binding = quotaUsedUp(q);
        }
      }
    }
    return v;
  }

  /** Whether limit `i` counts this admitted request: not a shadow that would refuse it, nor a duplicate. */
  const countsLimit = (tenant: TenantView, key: KeyView, i: number) =>
    !(refusing[i] && limitAt(tenant, key, i).shadow) && firstOf(slots, i);
  const countsQuota = (tenant: TenantView, key: KeyView, nl: number, j: number) =>
    !(refusing[nl + j] && quotaAt(tenant, key, j).shadow) && firstOf(counters, j);

  /**
   * The work a request leaves for its end: the measured cost's surplus, and a quota's refund. Only
   * made when there can be some (a measuring route, or quotas that counted a cost).
   */
  function settlement(
    tenant: TenantView,
    key: KeyView,
    cost: number,
    admittedAt: number,
    limitsCounted: readonly number[],
    quotasCounted: readonly QuotaCounter[],
  ) {
    return (o: RequestOutcome) => {
      const now = o.endedAt;
      const surplus = o.cost - cost;
      if (surplus > 0) {
        for (const i of limitsCounted) {
          const limit = limitAt(tenant, key, i);
          const perKey = i >= tenant.limits.length || limit.by === "key";
          windows.charge(limit, perKey ? key.uid : tenant.uid, perKey, surplus, now);
        }
      }
      const billed = o.billed - cost;
      if (billed !== 0) for (const c of quotasCounted) quotas.settle(c, billed, admittedAt, now);
    };
  }

  /** The refusal a verdict makes, if any; the concurrency cap is not part of it. */
  function refusalOf(
    v: Verdict,
    tenant: TenantView,
    key: KeyView,
    responseHeaders: Map<string, string>,
    now: number,
  ): Refusal | undefined {
    if (v.impossible !== undefined) {
      return refuse(tenant, key, responseHeaders, v.impossible.code, v.impossible.detail, null, now);
    }
    if (v.code !== undefined) {
      return refuse(tenant, key, responseHeaders, v.code, retryIn(v.binding, v.waitMs), v.waitMs, now);
    }
    return undefined;
  }

  const concurrencyRefusal = (tenant: TenantView, key: KeyView, headers: Map<string, string>, now: number) =>
    refuse(tenant, key, headers, "concurrency_limited", tooManyInFlight(tenant.concurrency!), null, now);

  return {
    name: "limits",
    check(ctx: RequestContext): Refusal | undefined {
      const tenant = ctx.tenant!;
      const key = ctx.key!;
      const cost = wholeUnits(ctx.cost);
      const now = clock.now();
      const nl = tenant.limits.length + key.limits.length;
      const nq = tenant.quotas.length + key.quotas.length;

      const refusal = refusalOf(judge(tenant, key, cost, now), tenant, key, ctx.responseHeaders, now);
      if (refusal) return refusal;

      if (tenant.concurrency !== null) {
        if (!concurrency.tryAcquire(tenant.uid, tenant.concurrency)) {
          return concurrencyRefusal(tenant, key, ctx.responseHeaders, now);
        }
        ctx.onDone(concurrency.releaseOnce(tenant.uid));
      }

      if (cost > 0) {
        // Only a measuring route's windows can gain at the end; any quota may give back.
        const measured = ctx.route !== undefined && ctx.route.costFrom !== null;
        const limitsCounted: number[] | null = measured ? [] : null;
        const quotasCounted: QuotaCounter[] | null = nq > 0 ? [] : null;
        for (let i = 0; i < nl; i++) {
          if (refusing[i]) recordWouldRefuse(ctx, "rate_limited");
          if (!countsLimit(tenant, key, i)) continue;
          windows.add(slots[i]!, cost);
          limitsCounted?.push(i);
        }
        for (let j = 0; j < nq; j++) {
          if (refusing[nl + j]) recordWouldRefuse(ctx, "quota_exhausted");
          if (!countsQuota(tenant, key, nl, j)) continue;
          quotas.add(counters[j]!, cost);
          quotasCounted?.push(counters[j]!);
        }
        if ((limitsCounted?.length ?? 0) + (quotasCounted?.length ?? 0) > 0) {
          ctx.onDone(settlement(tenant, key, cost, now, limitsCounted ?? [], quotasCounted ?? []));
        }
      }
      if (nl + nq > 0) {
        const [policy, state] = headers(tenant, key, now);
        // Lower-case names, as RequestContext.responseHeaders requires.
        if (policy !== "") {
          ctx.responseHeaders.set("ratelimit-policy", policy);
          ctx.responseHeaders.set("ratelimit", state);
        }
      }
      return undefined;
    },

    explain(tenant: TenantView, key: KeyView, requestCost: number): LimitsExplanation {
      const cost = wholeUnits(requestCost);
      const now = clock.now();
      const verdict = judge(tenant, key, cost, now);
      let refusal = refusalOf(verdict, tenant, key, new Map(), now);
      const inFlight = concurrency.count(tenant.uid);
      const capped = tenant.concurrency !== null && inFlight >= tenant.concurrency;
      if (!refusal && capped) refusal = concurrencyRefusal(tenant, key, new Map(), now);
      const admitted = refusal === undefined;
      const { states, wouldRefuse } = counterStates({
        tenant,
        key,
        cost,
        now,
        admitted,
        refusing,
        used: (i) => windows.used(slots[i]!, now),
        fitsInMs: (i, cap) => windows.msUntilFits(slots[i]!, cap, cost, now),
        quota: (j) => counters[j]!,
      });
      const cap =
        tenant.concurrency === null ? null : { limit: tenant.concurrency, inFlight, refuses: capped };
      return { refusal, wouldRefuse, counters: states, concurrency: cap };
    },
  };
}

/** Costs are whole units; anything else (negative, NaN) must not un-count or slip through. */
const wholeUnits = (cost: number) => (cost > 0 ? Math.ceil(cost) : 0);

/** Two limits with one counter and identity (views built by hand, not by a checked config) share one counter: count the request in it once. */
function firstOf<T>(xs: readonly T[], i: number): boolean {
  for (let k = 0; k < i; k++) if (xs[k] === xs[i]) return false;
  return true;
}
