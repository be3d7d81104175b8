/**
 * The limits policy's three sets of counters (policies/limits/policy.ts LimitsDeps) on the memory
 * the data-plane threads share: sliding windows (the same bucket rings and arithmetic as one
 * thread's, policies/limits/sliding-windows.ts), quota counts and requests in flight.
 *
 * The policy judges and counts inside limits.ts's lock, where every slot it needs is current, so
 * those calls only read and write. What a request leaves for its end (a measured surplus, a quota
 * given back) runs later and takes the lock itself; should the slot have been taken back meanwhile
 * (the window emptied, the period ended), a surplus is counted in the counter's new slot once the
 * main thread gives one (at the end's time or later: more, never less), and a give-back is dropped,
 * as one thread drops it for an ended period.
 */
import type { CompiledLimit, CompiledQuota } from "../gateway/snapshot.ts";
import { type Period, periodOf } from "../policies/limits/periods.ts";
import type { ConcurrencyCounting, QuotaCounting, WindowCounters } from "../policies/limits/policy.ts";
import type { QuotaCounter } from "../policies/limits/quota-counters.ts";
import { WindowRing } from "../policies/limits/sliding-windows.ts";
import { QUOTA, QUOTA_FIELDS, stripeOf } from "./memory.ts";
import type { Held, HeldQuota, SlotCache, Want } from "./slot-cache.ts";

/** Work left for a request's end that waits for a slot from the main thread. */
export class LateWork {
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly onError: (err: unknown) => void) {}

  add(work: Promise<void>): void {
    const p = work.catch(this.onError).finally(() => this.pending.delete(p));
    this.pending.add(p);
  }

  /** Resolves once everything added so far is done. */
  async settled(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }
}

const unresolved = (what: string) =>
  new Error(`no current slot for ${what}: the limits policy must resolve its counters under the lock first`);

export class SharedWindows extends WindowRing implements WindowCounters {
  constructor(
    private readonly cache: SlotCache,
    private readonly late: LateWork,
  ) {
    super(cache.views.windowMeta, cache.views.windowCounts);
  }

  slot(limit: CompiledLimit, identity: string, now: number, perKey = limit.by === "key"): number {
    const held = this.cache.window(perKey, limit.counter, identity);
    if (held === undefined) throw unresolved(limit.counter);
    this.advance(held.slot, limit.windowMs, now);
    return held.slot;
  }

  charge(limit: CompiledLimit, identity: string, perKey: boolean, units: number, now: number): void {
    const { cache } = this;
    const run = (): boolean => {
      const held = cache.window(perKey, limit.counter, identity);
      const stripe = stripeOf(identity);
      cache.views.lock(stripe);
      try {
        if (!cache.current("window", held)) return false;
        this.chargeSlot(held.slot, units, now);
        return true;
      } finally {
        cache.views.unlock(stripe);
      }
    };
    if (run()) return;
    const want: Want = { kind: "window", perKey, counter: limit.counter, identity, windowMs: limit.windowMs };
    const fetched = cache.fetch([want]);
    if (fetched instanceof Promise) this.late.add(fetched.then(() => void run()));
    else run();
  }
}

export class SharedQuotas implements QuotaCounting {
  private readonly periods = new WeakMap<CompiledQuota, Period>();
  private readonly values: Float64Array;

  constructor(
    private readonly cache: SlotCache,
    private readonly late: LateWork,
  ) {
    this.values = cache.views.quotas;
  }

  counter(quota: CompiledQuota, identity: string, now: number): QuotaCounter {
    const held = this.cache.quota(quota.by, quota.counter, identity);
    if (held === undefined) throw unresolved(quota.counter);
    this.roll(held, quota, now);
    return held;
  }

  add(counter: QuotaCounter, cost: number): void {
    const o = (counter as HeldQuota).slot * QUOTA_FIELDS;
    this.values[o + QUOTA.used]! += cost;
    this.values[o + QUOTA.changed] = 1;
  }

  /** An operator's reset or credit (under the lock, on a counter just rolled to now). */
  set(counter: QuotaCounter, used: number): void {
    const o = (counter as HeldQuota).slot * QUOTA_FIELDS;
    this.values[o + QUOTA.used] = used;
    this.values[o + QUOTA.changed] = 1;
  }

  /** As QuotaCounters.settle: a surplus counts in the current period, a give-back only in the admission's. */
  settle(counter: QuotaCounter, units: number, admittedAt: number, now: number): void {
    const c = counter as HeldQuota;
    const { cache, values } = this;
    const o = c.slot * QUOTA_FIELDS;
    if (units < 0) {
      cache.views.lock(c.stripe);
      try {
        // Taken back only after its period ended: nothing to give back then, as on one thread.
        if (
          cache.current("quota", c) &&
          values[o + QUOTA.start]! <= admittedAt &&
          now < values[o + QUOTA.end]!
        ) {
          values[o + QUOTA.used]! -= Math.min(-units, values[o + QUOTA.used]!);
          values[o + QUOTA.changed] = 1;
        }
      } finally {
        cache.views.unlock(c.stripe);
      }
      return;
    }
    if (units === 0) return;
    const { quota, identity } = c;
    const run = (): boolean => {
      const held = cache.quota(quota.by, quota.counter, identity);
      cache.views.lock(c.stripe);
      try {
        if (!cache.current("quota", held)) return false;
        this.roll(held as HeldQuota, quota, now);
        this.add(held as HeldQuota, units);
        return true;
      } finally {
        cache.views.unlock(c.stripe);
      }
    };
    if (run()) return;
    const fetched = cache.fetch([{ kind: "quota", quota, identity }]);
    if (fetched instanceof Promise) this.late.add(fetched.then(() => void run()));
    else run();
  }

  /**
   * Brings the slot to `now`'s period of `quota`. The period that ends keeps its final count for the
   * main thread to write, when it changed since last written.
   */
  private roll(held: HeldQuota, quota: CompiledQuota, now: number): void {
    held.quota = quota;
    let p = this.periods.get(quota);
    if (p === undefined || now < p.start || now >= p.end) {
      p = periodOf(quota, now);
      this.periods.set(quota, p);
    }
    const v = this.values;
    const o = held.slot * QUOTA_FIELDS;
    if (v[o + QUOTA.start] === p.start) return;
    if (v[o + QUOTA.changed] === 1) {
      v[o + QUOTA.endedStart] = v[o + QUOTA.start]!;
      v[o + QUOTA.endedUsed] = v[o + QUOTA.used]!;
      v[o + QUOTA.endedPending] = 1;
    }
    v[o + QUOTA.start] = p.start;
    v[o + QUOTA.end] = p.end;
    v[o + QUOTA.used] = 0;
    v[o + QUOTA.changed] = 0;
  }
}

export class SharedGate implements ConcurrencyCounting {
  private readonly inFlight: Int32Array;

  constructor(private readonly cache: SlotCache) {
    this.inFlight = cache.views.caps;
  }

  tryAcquire(tenant: string, max: number): boolean {
    const held = this.held(tenant);
    if (Atomics.load(this.inFlight, held.slot) >= max) return false;
    Atomics.add(this.inFlight, held.slot, 1);
    return true;
  }

  /** The slot cannot be taken back while this request holds its unit, so the release needs no lock. */
  releaseOnce(tenant: string): () => void {
    const { slot } = this.held(tenant);
    let held = true;
    return () => {
      if (held) {
        held = false;
        Atomics.sub(this.inFlight, slot, 1);
      }
    };
  }

  /** 0 for a tenant without a cap (explain asks for every tenant). */
  count(tenant: string): number {
    const held = this.cache.cap(tenant);
    return this.cache.current("cap", held) ? Atomics.load(this.inFlight, held.slot) : 0;
  }

  private held(tenant: string): Held {
    const held = this.cache.cap(tenant);
    if (held === undefined) throw unresolved(`the concurrency cap of ${tenant}`);
    return held;
  }
}

export interface SharedCounters {
  readonly windows: SharedWindows;
  readonly quotas: SharedQuotas;
  readonly concurrency: SharedGate;
}

/** The shared counters the limits policy runs on, for one thread. */
export function sharedCounters(cache: SlotCache, late: LateWork): SharedCounters {
  return {
    windows: new SharedWindows(cache, late),
    quotas: new SharedQuotas(cache, late),
    concurrency: new SharedGate(cache),
  };
}
