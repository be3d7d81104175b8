/**
 * onStoreError: local. While Redis cannot be reached, each node decides on its own counters, with the
 * in-process policy, against its share of every limit: of N live nodes (as last seen in Redis), a
 * sliding window admits ⌊limit / N⌋ units per window (at least 1, so small limits stay usable), a
 * concurrency cap ⌊cap / N⌋ requests (at least 1), and a quota ⌊(limit − used) / N⌋ more units, where
 * `used` is the count this node last saw (it never gives away what was already spent). With the
 * load spread evenly the cluster as a whole stays within every limit; a node never gets more than
 * its share, however the load is spread.
 *
 * Everything counted here is remembered and added to Redis when it answers again (`merge`): each
 * window's buckets as they stand (bucket indices are the same on every node, so they land exactly
 * where Redis would have counted them), and each quota's units since the outage began.
 */

import type { Refusal } from "../../gateway/refusal.ts";
import type { CompiledLimit, CompiledQuota, KeyView, TenantView } from "../../gateway/snapshot.ts";
import type { Clock } from "../../lib/clock.ts";
import { ConcurrencyGate } from "../../policies/limits/concurrency.ts";
import {
  createLimitsPolicy,
  type LimitsExplanation,
  type LimitsPolicy,
} from "../../policies/limits/policy.ts";
import type { QuotaCounter, QuotaCounters } from "../../policies/limits/quota-counters.ts";
import { SlidingWindows } from "../../policies/limits/sliding-windows.ts";
import type { RequestContext } from "../../policies/policy.ts";
import type { RedisKeys } from "./keys.ts";

interface TouchedWindow {
  readonly tenantId: string;
  readonly limit: CompiledLimit;
  /** The uid this node's counters know the tenant or key by. */
  readonly identity: string;
  readonly perKey: boolean;
}

interface TouchedQuota {
  readonly tenantId: string;
  readonly quota: CompiledQuota;
  readonly counter: QuotaCounter;
  readonly periodStart: number;
  /** The count when this node began counting it alone. */
  base: number;
}

/** What a node counted alone, grouped by tenant (one script call each: their keys share a slot). */
export interface LocalCounts {
  readonly windows: { key: string; touched: TouchedWindow; windowMs: number; buckets: number[] }[];
  /** `units` counted here since the outage began; `whole` the node's count, which includes them. */
  readonly quotas: { key: string; units: number; whole: number; touched: TouchedQuota }[];
}

export class LocalShare {
  private readonly windows = new SlidingWindows();
  private readonly concurrency = new ConcurrencyGate();
  private readonly policy: LimitsPolicy;
  private readonly touchedWindows = new Map<string, TouchedWindow>();
  private readonly touchedQuotas = new Map<string, TouchedQuota>();

  constructor(
    private readonly clock: Clock,
    /** The node's quota counters, which mirror Redis's (and are flushed to the database). */
    private readonly quotas: QuotaCounters,
    private readonly keys: RedisKeys,
    /** Live nodes, as last seen. */
    private readonly nodes: () => number,
  ) {
    this.policy = createLimitsPolicy({ clock, windows: this.windows, quotas, concurrency: this.concurrency });
  }

  /** Judges and counts the request against this node's share of its limits. */
  check(ctx: RequestContext): Refusal | undefined {
    const tenant = ctx.tenant!;
    const key = ctx.key!;
    const now = this.clock.now();
    this.touch(tenant, key, now);
    const shares = this.shares(tenant, key, now, true);
    // The in-process policy reads the views from the context; the request keeps its own after.
    ctx.tenant = shares.tenant;
    ctx.key = shares.key;
    try {
      return this.policy.check(ctx);
    } finally {
      ctx.tenant = tenant;
      ctx.key = key;
    }
  }

  explain(tenant: TenantView, key: KeyView, cost: number): LimitsExplanation {
    const now = this.clock.now();
    const shares = this.shares(tenant, key, now, false);
    return this.policy.explain(shares.tenant, shares.key, cost);
  }

  /** A measured surplus Redis could not take: counted here, and merged later. */
  chargeWindow(tenant: TenantView, key: KeyView, limit: CompiledLimit, perKey: boolean, units: number): void {
    const t = this.touchWindow(tenant, key, limit, perKey);
    this.windows.charge(limit, t.identity, perKey, units, this.clock.now());
  }

  /** A quota settlement Redis could not take (see QuotaCounters.settle): counted here, merged later. */
  settleQuota(
    tenant: TenantView,
    key: KeyView,
    counter: QuotaCounter,
    quota: CompiledQuota,
    units: number,
    admittedAt: number,
  ): void {
    const now = this.clock.now();
    this.touchQuota(tenant, key, quota, now);
    this.quotas.settle(counter, units, admittedAt, now);
  }

  /** Whether anything waits to be merged into Redis. */
  get pending(): boolean {
    return this.touchedWindows.size + this.touchedQuotas.size > 0;
  }

  /**
   * Takes out what was counted here since Redis was lost, grouped by tenant id. Windows leave this
   * node's counters (they are Redis's to count from now on); quotas stay, as the mirror of Redis.
   * What is counted meanwhile is remembered afresh, so nothing is merged twice.
   */
  take(now: number): Map<string, LocalCounts> {
    const out = new Map<string, LocalCounts>();
    const group = (tenantId: string) => {
      let g = out.get(tenantId);
      if (!g) {
        g = { windows: [], quotas: [] };
        out.set(tenantId, g);
      }
      return g;
    };
    for (const [key, t] of this.touchedWindows) {
      const taken = this.windows.take(t.limit.counter, t.identity, t.perKey, now);
      if (taken && taken.buckets.length > 0) group(t.tenantId).windows.push({ key, touched: t, ...taken });
    }
    this.touchedWindows.clear();
    for (const [key, t] of this.touchedQuotas) {
      // A counter that rolled into a new period: the ended one no longer limits anything.
      if (t.counter.periodStart !== t.periodStart) continue;
      group(t.tenantId).quotas.push({
        key,
        units: t.counter.used - t.base,
        whole: t.counter.used,
        touched: t,
      });
    }
    this.touchedQuotas.clear();
    return out;
  }

  /** Puts back what a merge could not deliver, to be merged with the rest next time. */
  putBack(counts: LocalCounts): void {
    for (const w of counts.windows) {
      const { limit, identity, perKey } = w.touched;
      this.touchedWindows.set(w.key, w.touched);
      // Oldest first, each at its bucket's time: charge counts at the newest bucket it has seen, so
      // units only ever move to a later bucket (counted longer), never to an earlier one.
      const b = Math.max(1, Math.ceil(w.windowMs / 20));
      for (let i = 0; i < w.buckets.length; i += 2) {
        this.windows.charge(limit, identity, perKey, w.buckets[i + 1]!, w.buckets[i]! * b);
      }
    }
    for (const q of counts.quotas) {
      const again = this.touchedQuotas.get(q.key);
      if (again) again.base = q.touched.base;
      else this.touchedQuotas.set(q.key, q.touched);
    }
  }

  /** Whether a quota was counted here again since `take` (then its mirror is ahead of Redis's answer). */
  countedSince(key: string): boolean {
    return this.touchedQuotas.has(key);
  }

  private touch(tenant: TenantView, key: KeyView, now: number): void {
    const nl = tenant.limits.length;
    for (let i = 0; i < nl + key.limits.length; i++) {
      const limit = i < nl ? tenant.limits[i]! : key.limits[i - nl]!;
      this.touchWindow(tenant, key, limit, i >= nl || limit.by === "key");
    }
    for (const q of [...tenant.quotas, ...key.quotas]) this.touchQuota(tenant, key, q, now);
  }

  private touchWindow(
    tenant: TenantView,
    key: KeyView,
    limit: CompiledLimit,
    perKey: boolean,
  ): TouchedWindow {
    const name = this.keys.window(tenant, key, perKey, limit.counter);
    let t = this.touchedWindows.get(name);
    if (!t) {
      t = { tenantId: tenant.id, limit, identity: perKey ? key.uid : tenant.uid, perKey };
      this.touchedWindows.set(name, t);
    }
    return t;
  }

  private touchQuota(tenant: TenantView, key: KeyView, quota: CompiledQuota, now: number): TouchedQuota {
    const counter = this.quotas.counter(quota, quota.by === "key" ? key.uid : tenant.uid, now);
    const name = this.keys.quota(tenant, key, quota, counter.periodStart);
    let t = this.touchedQuotas.get(name);
    if (!t) {
      t = { tenantId: tenant.id, quota, counter, periodStart: counter.periodStart, base: counter.used };
      this.touchedQuotas.set(name, t);
    }
    return t;
  }

  /**
   * The views this node judges by: its share of each limit, quota and cap. A quota's share is of what
   * remained when the node began counting it alone (`counting`: from now on, if not before).
   */
  private shares(
    tenant: TenantView,
    key: KeyView,
    now: number,
    counting: boolean,
  ): { tenant: TenantView; key: KeyView } {
    const n = Math.max(1, this.nodes());
    const window = (l: CompiledLimit): CompiledLimit => ({
      ...l,
      limit: Math.max(1, Math.floor(l.limit / n)),
    });
    const quota = (q: CompiledQuota): CompiledQuota => {
      let base: number;
      if (counting) base = this.touchQuota(tenant, key, q, now).base;
      else {
        const c = this.quotas.counter(q, q.by === "key" ? key.uid : tenant.uid, now);
        base = this.touchedQuotas.get(this.keys.quota(tenant, key, q, c.periodStart))?.base ?? c.used;
      }
      return { ...q, limit: base + Math.max(0, Math.floor((q.limit - base) / n)) };
    };
    return {
      tenant: {
        ...tenant,
        limits: tenant.limits.map(window),
        quotas: tenant.quotas.map(quota),
        concurrency: tenant.concurrency === null ? null : Math.max(1, Math.floor(tenant.concurrency / n)),
      },
      key: { ...key, limits: key.limits.map(window), quotas: key.quotas.map(quota) },
    };
  }
}
