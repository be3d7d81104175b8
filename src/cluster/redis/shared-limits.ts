/**
 * The limits policy of a cluster: sliding windows, quotas and the concurrency cap decided in Redis,
 * by one script per request (scripts.ts `decide`: every check first, then counting only if all
 * pass), so the one-node guarantees hold across every node: at most `limit` units in any interval
 * W, refusals cost nothing, Retry-After never early, RateLimit headers exact. The script returns the
 * counts it judged by, and this module turns them into refusals, headers and explanations exactly as
 * policies/limits/policy.ts does from its own counters (the same wording, fields and rounding).
 *
 * A request with no limit, quota or cap never waits for Redis. When Redis does not answer within
 * `redisTimeout`, or is known to be unreachable, onStoreError decides (local-share.ts for `local`).
 * Quota counts Redis returns are copied into the node's QuotaCounters, which the control API shows
 * and the maintenance flush writes to the database, as on one node.
 */
import { Refusal, type RefusalCode } from "../../gateway/refusal.ts";
import type { CompiledLimit, KeyView, TenantView } from "../../gateway/snapshot.ts";
import type { Clock } from "../../lib/clock.ts";
import type { Log } from "../../lib/log.ts";
import { counterStates, limitAt, quotaAt } from "../../policies/limits/counter-states.ts";
import { ceilSeconds, type FieldShape, fieldShape, limitsRefusal } from "../../policies/limits/headers.ts";
import type { CountersExplanation, LimitsExplanation } from "../../policies/limits/policy.ts";
import type { QuotaCounter, QuotaCounters } from "../../policies/limits/quota-counters.ts";
import { capOf } from "../../policies/limits/sliding-windows.ts";
import {
  limitNeverFits,
  limitReached,
  quotaNeverFits,
  quotaUsedUp,
  retryIn,
  tooManyInFlight,
} from "../../policies/limits/wording.ts";
import {
  type RequestContext,
  type RequestOutcome,
  recordWouldRefuse,
  type WaitingPolicy,
} from "../../policies/policy.ts";
import { type RedisConnection, StoreUnavailable } from "./client.ts";
import type { ClusterHealth } from "./health.ts";
import type { RedisKeys } from "./keys.ts";
import type { Leases } from "./leases.ts";
import type { LocalShare } from "./local-share.ts";
import { decideScript, settleScript } from "./scripts.ts";
import type { OnStoreError } from "./settings.ts";

export interface SharedLimitsDeps {
  readonly clock: Clock;
  readonly connection: RedisConnection;
  readonly keys: RedisKeys;
  /** The node's quota counters: a copy of Redis's counts, flushed to the database. */
  readonly quotas: QuotaCounters;
  readonly health: ClusterHealth;
  readonly local: LocalShare;
  readonly leases: Leases;
  readonly onStoreError: OnStoreError;
  /** How long keys outlive what they count. */
  readonly keepMs: number;
  readonly log: Log;
}

export interface SharedLimitsPolicy extends WaitingPolicy {
  explain(tenant: TenantView, key: KeyView, cost: number): LimitsExplanation | Promise<LimitsExplanation>;
  /** Resolves once every settlement sent to Redis so far has been answered (or failed over). */
  settled(): Promise<void>;
}

/** One request's keys and arguments for the decide script. */
interface Plan {
  readonly keys: string[];
  readonly args: (string | number)[];
  /** Per quota, the node's counter in the current period. */
  readonly counters: QuotaCounter[];
  /** Per quota, that period as it was when planned (a counter may roll meanwhile). */
  readonly periods: { readonly periodStart: number; readonly periodEnd: number }[];
}

/** What the decide script judged by. */
interface Reading {
  /** 0 admitted, 1 refused by a window or quota, 2 by the cap. */
  readonly status: number;
  readonly inFlight: number;
  /** Per window: used, ms until the cost fits (-1 never), used after, ms until empty after. */
  readonly windows: number[];
  /** Per quota: used, used after. */
  readonly quotas: number[];
}

interface Verdict {
  impossible?: { code: RefusalCode; detail: string };
  code?: RefusalCode;
  waitMs: number;
  binding: string;
  /** Per window, then per quota: whether it alone would refuse. */
  refusing: boolean[];
}

const perKeyAt = (tenant: TenantView, i: number, limit: CompiledLimit) =>
  i >= tenant.limits.length || limit.by === "key";

/** Costs are whole units; anything else (negative, NaN) must not un-count or slip through. */
const wholeUnits = (cost: number) => (cost > 0 ? Math.ceil(cost) : 0);

export function createSharedLimitsPolicy(deps: SharedLimitsDeps): SharedLimitsPolicy {
  const { clock, connection, keys, quotas, health, local, leases, keepMs } = deps;
  const shapes = new WeakMap<KeyView, FieldShape>();
  /** Settlements sent and not yet answered. */
  const settling = new Set<Promise<void>>();

  /** A request's key names, which only change with the views (a reload) and quota periods. */
  interface Names {
    readonly tenant: TenantView;
    readonly windows: string[];
    readonly quotas: { periodStart: number; name: string }[];
    readonly leases: string | null;
  }
  const names = new WeakMap<KeyView, Names>();

  function namesOf(tenant: TenantView, key: KeyView): Names {
    let n = names.get(key);
    if (n === undefined || n.tenant !== tenant) {
      const nl = tenant.limits.length + key.limits.length;
      const windows: string[] = [];
      for (let i = 0; i < nl; i++) {
        const limit = limitAt(tenant, key, i);
        windows.push(keys.window(tenant, key, perKeyAt(tenant, i, limit), limit.counter));
      }
      const nq = tenant.quotas.length + key.quotas.length;
      const quotaNames = Array.from({ length: nq }, () => ({ periodStart: Number.NaN, name: "" }));
      n = {
        tenant,
        windows,
        quotas: quotaNames,
        leases: tenant.concurrency === null ? null : keys.leases(tenant),
      };
      names.set(key, n);
    }
    return n;
  }

  function plan(tenant: TenantView, key: KeyView, now: number): Plan {
    const n = namesOf(tenant, key);
    const out: Plan = { keys: n.windows.slice(), args: [], counters: [], periods: [] };
    for (let i = 0; i < n.windows.length; i++) {
      const limit = limitAt(tenant, key, i);
      out.args.push(limit.windowMs, capOf(limit), limit.shadow ? 1 : 0);
    }
    for (let j = 0; j < n.quotas.length; j++) {
      const q = quotaAt(tenant, key, j);
      const c = quotas.counter(q, q.by === "key" ? key.uid : tenant.uid, now);
      out.counters.push(c);
      out.periods.push({ periodStart: c.periodStart, periodEnd: c.periodEnd });
      const named = n.quotas[j]!;
      if (named.periodStart !== c.periodStart) {
        named.periodStart = c.periodStart;
        named.name = keys.quota(tenant, key, q, c.periodStart);
      }
      out.keys.push(named.name);
      out.args.push(q.limit, q.shadow ? 1 : 0, c.periodEnd - now, c.used);
    }
    if (n.leases !== null) out.keys.push(n.leases);
    return out;
  }

  async function decide(
    tenant: TenantView,
    key: KeyView,
    p: Plan,
    cost: number,
    now: number,
    dry: boolean,
    lease: string,
  ): Promise<Reading> {
    const nl = tenant.limits.length + key.limits.length;
    const nq = p.counters.length;
    const reply = (await connection.run(decideScript, p.keys, [
      now,
      cost,
      dry ? 1 : 0,
      nl,
      nq,
      tenant.concurrency ?? 0,
      lease,
      leases.leaseMs,
      keepMs,
      ...p.args,
    ])) as number[];
    return {
      status: reply[0]!,
      inFlight: reply[1]!,
      windows: reply.slice(2, 2 + 4 * nl),
      quotas: reply.slice(2 + 4 * nl),
    };
  }

  /** The enforced limits' verdict and each one's refusal, from the counts Redis judged by. */
  function judge(tenant: TenantView, key: KeyView, cost: number, r: Reading, p: Plan, now: number): Verdict {
    const nl = tenant.limits.length + key.limits.length;
    const v: Verdict = { waitMs: 0, binding: "", refusing: [] };
    for (let i = 0; i < nl; i++) {
      const limit = limitAt(tenant, key, i);
      v.refusing[i] = false;
      if (cost === 0) continue;
      const cap = capOf(limit);
      if (cost > cap) {
        v.refusing[i] = true;
        if (limit.shadow) continue;
        v.impossible ??= { code: "rate_limited", detail: limitNeverFits(limit, cost) };
      } else if (r.windows[4 * i]! + cost > cap) {
        v.refusing[i] = true;
        if (limit.shadow) continue;
        const ms = r.windows[4 * i + 1]!;
        if (ms >= v.waitMs) {
          v.code = "rate_limited";
          v.waitMs = ms;
          v.binding = limitReached(limit);
        }
      }
    }
    for (let j = 0; j < p.counters.length; j++) {
      const q = quotaAt(tenant, key, j);
      v.refusing[nl + j] = false;
      if (cost === 0) continue;
      if (cost > q.limit) {
        v.refusing[nl + j] = true;
        if (q.shadow) continue;
        v.impossible ??= { code: "quota_exhausted", detail: quotaNeverFits(q, cost) };
      } else if (r.quotas[2 * j]! + cost > q.limit) {
        v.refusing[nl + j] = true;
        if (q.shadow) continue;
        const ms = p.periods[j]!.periodEnd - now;
        if (ms >= v.waitMs) {
          v.code = "quota_exhausted";
          v.waitMs = ms;
          v.binding = quotaUsedUp(q);
        }
      }
    }
    return v;
  }

  /** RateLimit-Policy and RateLimit from the counts after the request (policies/limits/headers.ts). */
  function headers(tenant: TenantView, key: KeyView, r: Reading, p: Plan, now: number): [string, string] {
    let shape = shapes.get(key);
    if (shape === undefined || shape.tenant !== tenant || now < shape.from || now >= shape.until) {
      shape = fieldShape(tenant, key, p.periods);
      shapes.set(key, shape);
    }
    const nl = tenant.limits.length + key.limits.length;
    let state = "";
    for (let i = 0; i < nl; i++) {
      const prefix = shape.prefixes[i];
      if (prefix === null) continue;
      const left = Math.max(0, limitAt(tenant, key, i).limit - r.windows[4 * i + 2]!);
      state += `${prefix}${left};t=${ceilSeconds(r.windows[4 * i + 3]!)}`;
    }
    for (let j = 0; j < p.counters.length; j++) {
      const prefix = shape.prefixes[nl + j];
      if (prefix === null) continue;
      const left = Math.max(0, quotaAt(tenant, key, j).limit - r.quotas[2 * j + 1]!);
      state += `${prefix}${left};t=${ceilSeconds(p.periods[j]!.periodEnd - now)}`;
    }
    return [shape.policy, state];
  }

  function refuse(
    tenant: TenantView,
    key: KeyView,
    r: Reading,
    p: Plan,
    responseHeaders: Map<string, string>,
    code: RefusalCode,
    detail: string,
    retryMs: number | null,
    now: number,
  ): Refusal {
    const counted = tenant.limits.length + key.limits.length + p.counters.length;
    return limitsRefusal(
      code,
      detail,
      retryMs,
      counted > 0 ? headers(tenant, key, r, p, now) : null,
      responseHeaders,
    );
  }

  function refusalOf(
    v: Verdict,
    tenant: TenantView,
    key: KeyView,
    r: Reading,
    p: Plan,
    responseHeaders: Map<string, string>,
    now: number,
  ): Refusal | undefined {
    if (v.impossible) {
      return refuse(tenant, key, r, p, responseHeaders, v.impossible.code, v.impossible.detail, null, now);
    }
    if (v.code) {
      return refuse(tenant, key, r, p, responseHeaders, v.code, retryIn(v.binding, v.waitMs), v.waitMs, now);
    }
    return undefined;
  }

  const concurrencyRefusal = (
    tenant: TenantView,
    key: KeyView,
    r: Reading,
    p: Plan,
    h: Map<string, string>,
    now: number,
  ) => refuse(tenant, key, r, p, h, "concurrency_limited", tooManyInFlight(tenant.concurrency!), null, now);

  /** Copies the counts Redis holds into the node's quota counters. */
  function mirror(p: Plan, r: Reading): void {
    for (let j = 0; j < p.counters.length; j++) {
      const c = p.counters[j]!;
      const after = r.quotas[2 * j + 1]!;
      if (c.periodStart === p.periods[j]!.periodStart && c.used !== after) quotas.set(c, after);
    }
  }

  /** Decides without Redis, as onStoreError says. */
  function fallback(ctx: RequestContext): Refusal | undefined {
    health.fallbacks[deps.onStoreError]++;
    if (deps.onStoreError === "local") return local.check(ctx);
    if (deps.onStoreError === "open") return undefined;
    return storeRefusal();
  }

  async function checkInRedis(
    ctx: RequestContext,
    tenant: TenantView,
    key: KeyView,
  ): Promise<Refusal | undefined> {
    const cost = wholeUnits(ctx.cost);
    const now = clock.now();
    const p = plan(tenant, key, now);
    const lease = tenant.concurrency === null ? "" : leases.nextId();
    let r: Reading;
    try {
      r = await decide(tenant, key, p, cost, now, false, lease);
    } catch (err) {
      if (!(err instanceof StoreUnavailable)) throw err;
      health.failed(err);
      return fallback(ctx);
    }
    mirror(p, r);
    const v = judge(tenant, key, cost, r, p, now);
    const refusal = refusalOf(v, tenant, key, r, p, ctx.responseHeaders, now);
    if ((refusal !== undefined) !== (r.status === 1)) {
      throw new Error(`the decide script and the verdict disagree (status ${r.status})`);
    }
    if (refusal) return refusal;
    if (r.status === 2) return concurrencyRefusal(tenant, key, r, p, ctx.responseHeaders, now);

    if (tenant.concurrency !== null) ctx.onDone(leases.hold(p.keys[p.keys.length - 1]!, lease));
    const nl = tenant.limits.length + key.limits.length;
    const nq = p.counters.length;
    if (cost > 0) {
      const measured = ctx.route !== undefined && ctx.route.costFrom !== null;
      const limitsCounted: number[] = [];
      const quotasCounted: number[] = [];
      for (let i = 0; i < nl; i++) {
        if (v.refusing[i]) recordWouldRefuse(ctx, "rate_limited");
        if (measured && !(v.refusing[i] && limitAt(tenant, key, i).shadow) && firstOf(p.keys, i)) {
          limitsCounted.push(i);
        }
      }
      for (let j = 0; j < nq; j++) {
        if (v.refusing[nl + j]) recordWouldRefuse(ctx, "quota_exhausted");
        if (!(v.refusing[nl + j] && quotaAt(tenant, key, j).shadow) && firstOf(p.keys, nl + j)) {
          quotasCounted.push(j);
        }
      }
      if (limitsCounted.length + quotasCounted.length > 0) {
        ctx.onDone(settlement(tenant, key, cost, now, p, limitsCounted, quotasCounted));
      }
    }
    if (nl + nq > 0) {
      const [policy, state] = headers(tenant, key, r, p, now);
      if (policy !== "") {
        ctx.responseHeaders.set("ratelimit-policy", policy);
        ctx.responseHeaders.set("ratelimit", state);
      }
    }
    return undefined;
  }

  /**
   * What a request leaves for its end (policies/limits/policy.ts settlement): a measured surplus
   * counted in the windows that counted it, at the end's time; quota units added in the current
   * period, or given back while the period it was admitted in lasts. Without Redis, counted here.
   */
  function settlement(
    tenant: TenantView,
    key: KeyView,
    cost: number,
    admittedAt: number,
    p: Plan,
    limitsCounted: readonly number[],
    quotasCounted: readonly number[],
  ) {
    const nl = tenant.limits.length + key.limits.length;
    const admitted = quotasCounted.map((j) => ({
      j,
      counter: p.counters[j]!,
      key: p.keys[nl + j]!,
      end: p.periods[j]!.periodEnd,
    }));
    return (o: RequestOutcome) => {
      const now = o.endedAt;
      const surplus = o.cost - cost;
      const billed = o.billed - cost;
      const windows = surplus > 0 ? limitsCounted : [];
      // A surplus counts in the period the response ended in; a refund only while the period the
      // request was admitted in lasts (its total may be written already once it has ended).
      const items =
        billed === 0
          ? []
          : admitted.flatMap((a) => {
              const q = quotaAt(tenant, key, a.j);
              const identity = q.by === "key" ? key.uid : tenant.uid;
              if (billed < 0)
                return now < a.end ? [{ q, identity, admitted: a.counter, key: a.key, end: a.end }] : [];
              const c = quotas.counter(q, identity, now);
              return [
                {
                  q,
                  identity,
                  admitted: a.counter,
                  key: keys.quota(tenant, key, q, c.periodStart),
                  end: c.periodEnd,
                },
              ];
            });
      if (windows.length + items.length === 0) return;
      const settleHere = () => {
        for (const i of windows) {
          const limit = limitAt(tenant, key, i);
          const perKey = perKeyAt(tenant, i, limit);
          local.chargeWindow(tenant, key, limit, perKey, surplus);
        }
        for (const it of items) local.settleQuota(tenant, key, it.admitted, it.q, billed, admittedAt);
      };
      if (!health.healthy) {
        settleHere();
        return;
      }
      const args: (string | number)[] = [now, keepMs, windows.length, items.length, Math.max(0, surplus)];
      for (const i of windows) args.push(limitAt(tenant, key, i).windowMs);
      for (const it of items) args.push(billed, it.end - now);
      const sent = connection
        .run(settleScript, [...windows.map((i) => p.keys[i]!), ...items.map((it) => it.key)], args)
        .then(
          (reply) => {
            // Read at the answer's time: a counter never rolls back to a period that has ended.
            const at = clock.now();
            (reply as number[]).forEach((after, n) => {
              const it = items[n]!;
              const c = quotas.counter(it.q, it.identity, at);
              if (after >= 0 && c.periodEnd === it.end && c.used !== after) quotas.set(c, after);
            });
          },
          (err: unknown) => {
            if (!(err instanceof StoreUnavailable)) {
              deps.log("error", "settling a request's cost failed", { error: String(err) });
              return;
            }
            health.failed(err);
            settleHere();
          },
        );
      settling.add(sent);
      const done = () => settling.delete(sent);
      sent.then(done, done);
    };
  }

  function storeRefusal(): Refusal {
    return new Refusal(
      "service_unavailable",
      "Rate limits cannot be checked right now: the shared counter store is unreachable. Retry shortly.",
      { "Retry-After": "1" },
    );
  }

  const store = (decidedBy: CountersExplanation["decidedBy"]): CountersExplanation => ({
    decidedBy,
    nodes: health.nodes,
  });

  function explainWithout(tenant: TenantView, key: KeyView, cost: number): LimitsExplanation {
    const how = deps.onStoreError;
    if (how === "local") return { ...local.explain(tenant, key, cost), store: store("local") };
    return {
      refusal: how === "closed" ? storeRefusal() : undefined,
      wouldRefuse: [],
      counters: [],
      concurrency: null,
      store: store(how),
    };
  }

  async function explainInRedis(tenant: TenantView, key: KeyView, cost: number): Promise<LimitsExplanation> {
    const now = clock.now();
    const p = plan(tenant, key, now);
    let r: Reading;
    try {
      r = await decide(tenant, key, p, cost, now, true, "");
    } catch (err) {
      if (!(err instanceof StoreUnavailable)) throw err;
      health.failed(err);
      return explainWithout(tenant, key, cost);
    }
    const v = judge(tenant, key, cost, r, p, now);
    let refusal = refusalOf(v, tenant, key, r, p, new Map(), now);
    const capped = tenant.concurrency !== null && r.inFlight >= tenant.concurrency;
    if (!refusal && capped) refusal = concurrencyRefusal(tenant, key, r, p, new Map(), now);
    const admitted = refusal === undefined;
    const { states, wouldRefuse } = counterStates({
      tenant,
      key,
      cost,
      now,
      admitted,
      refusing: v.refusing,
      used: (i) => r.windows[4 * i]!,
      fitsInMs: (i, cap) => (r.windows[4 * i]! + cost > cap ? r.windows[4 * i + 1]! : 0),
      quota: (j) => ({ used: r.quotas[2 * j]!, periodEnd: p.periods[j]!.periodEnd }),
    });
    const concurrency =
      tenant.concurrency === null
        ? null
        : { limit: tenant.concurrency, inFlight: r.inFlight, refuses: capped };
    return { refusal, wouldRefuse, counters: states, concurrency, store: store("redis") };
  }

  return {
    name: "limits",
    check(ctx: RequestContext) {
      const tenant = ctx.tenant!;
      const key = ctx.key!;
      if (tenant.limits.length + key.limits.length + tenant.quotas.length + key.quotas.length === 0) {
        if (tenant.concurrency === null) return undefined;
      }
      if (!health.healthy) return fallback(ctx);
      return checkInRedis(ctx, tenant, key);
    },

    explain(tenant: TenantView, key: KeyView, requestCost: number) {
      const cost = wholeUnits(requestCost);
      if (!health.healthy) return explainWithout(tenant, key, cost);
      return explainInRedis(tenant, key, cost);
    },

    async settled() {
      while (settling.size > 0) await Promise.all(settling);
    },
  };
}

/** Two limits with one counter and identity (views built by hand) count the request once. */
function firstOf(keys: readonly string[], i: number): boolean {
  for (let k = 0; k < i; k++) if (keys[k] === keys[i]) return false;
  return true;
}
