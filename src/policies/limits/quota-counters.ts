import type { CompiledQuota } from "../../gateway/snapshot.ts";
import type { Clock } from "../../lib/clock.ts";
import { type Period, periodOf } from "./periods.ts";
import type { QuotaRow, QuotaStore } from "./quota-store.ts";

/** One quota's counter for one tenant or key, in its current period. */
export interface QuotaCounter {
  /**
   * `tenant:<uid>:<origin>:<name>` or `key:<uid>:<origin>:<name>` (the counted incarnation and the
   * quota's `counter`); the store's key with the period start.
   */
  readonly scope: string;
  readonly periodStart: number;
  readonly periodEnd: number;
  readonly used: number;
}

class Counter implements QuotaCounter {
  dirty = false;
  constructor(
    private readonly by: "tenant" | "key",
    readonly identity: string,
    private readonly counter: string,
    /** The declaration it was last judged by: a reload may change its period. */
    public quota: CompiledQuota,
    public periodStart: number,
    public periodEnd: number,
    public used: number,
  ) {}

  /** Built when needed (load and flush, not per request), so no string is held per counter. */
  get scope(): string {
    return scopeOf(this.by, this.identity, this.counter);
  }
}

const scopeOf = (by: "tenant" | "key", identity: string, counter: string) => `${by}:${identity}:${counter}`;

/** The longest period (a 31-day month plus a DST hour) bounds how far back `load` must look. */
const LONGEST_PERIOD_MS = 32 * 86_400_000;

/**
 * Quota counters over calendar periods. The hot path touches only memory; `flush` writes the counters
 * that changed, as absolute values, in one store transaction, so a restart (load) neither resets nor
 * double-counts, and a reload keeps counting because this object outlives snapshots.
 *
 * Memory: one small object (no strings of its own) and one Map entry per (quota, tenant or key) in
 * its current period; bench/limits.ts measures it.
 */
export class QuotaCounters {
  private readonly byTenant = new Map<string, Map<string, Counter>>();
  private readonly byKey = new Map<string, Map<string, Counter>>();
  private readonly periods = new WeakMap<CompiledQuota, Period>();
  /** Persisted values not yet claimed by a counter: the newest row per scope. */
  private readonly seeds = new Map<string, QuotaRow>();
  private dirty: Counter[] = [];
  /** Final values of periods that ended (or counters swept) before they were flushed. */
  private ended: QuotaRow[] = [];

  constructor(
    private readonly store: QuotaStore,
    private readonly clock: Clock,
  ) {}

  /** Reads the persisted counters of current periods. Call once, before serving. */
  load(now = this.clock.now()): void {
    for (const row of this.store.load(now - LONGEST_PERIOD_MS)) {
      const seen = this.seeds.get(row.scope);
      if (seen === undefined || seen.periodStart < row.periodStart) this.seeds.set(row.scope, row);
    }
  }

  /** The counter of `quota` for `identity` (a tenant's or key's uid, per `quota.by`), rolled to `now`'s period. */
  counter(quota: CompiledQuota, identity: string, now: number): QuotaCounter {
    const period = this.periodAt(quota, now);
    const scope = quota.by === "key" ? this.byKey : this.byTenant;
    let counters = scope.get(quota.counter);
    if (counters === undefined) {
      counters = new Map();
      scope.set(quota.counter, counters);
    }
    let c = counters.get(identity);
    if (c === undefined) {
      const used =
        this.seeds.size === 0 ? 0 : this.claimSeed(scopeOf(quota.by, identity, quota.counter), period.start);
      c = new Counter(quota.by, identity, quota.counter, quota, period.start, period.end, used);
      counters.set(identity, c);
      return c;
    }
    c.quota = quota;
    if (c.periodStart !== period.start) {
      this.retire(c);
      c.periodStart = period.start;
      c.periodEnd = period.end;
      c.used = this.seeds.size === 0 ? 0 : this.claimSeed(c.scope, period.start);
    }
    return c;
  }

  /** Counts `cost` units; the caller has checked that they fit, or they were measured after the fact. */
  add(counter: QuotaCounter, cost: number): void {
    const c = counter as Counter;
    c.used += cost;
    this.touch(c);
  }

  /**
   * Sets the units used in the counter's current period (an operator's reset or credit). The next
   * request sees it, and the next flush writes it: flushes carry absolute values and the latest one
   * wins, so no write made before this one can bring the old count back.
   */
  set(counter: QuotaCounter, used: number): void {
    const c = counter as Counter;
    c.used = used;
    this.touch(c);
  }

  private touch(c: Counter): void {
    if (!c.dirty) {
      c.dirty = true;
      this.dirty.push(c);
    }
  }

  /**
   * Settles what a request counted at admission (`counter`, at `admittedAt`) when its response ends:
   * `units` more (a measured surplus) count in the quota's current period, as the declaration it was
   * last judged by defines it; `units` fewer (what is not billed) are taken back only while the
   * period the request was admitted in lasts, since an ended period's total may already be written.
   */
  settle(counter: QuotaCounter, units: number, admittedAt: number, now: number): void {
    const c = counter as Counter;
    if (units > 0) {
      this.add(this.counter(c.quota, c.identity, now), units);
    } else if (units < 0 && c.periodStart <= admittedAt && now < c.periodEnd) {
      // Within its period a counter is never swept, so `c` is still the one counted in.
      c.used -= Math.min(-units, c.used);
      if (!c.dirty) {
        c.dirty = true;
        this.dirty.push(c);
      }
    }
  }

  /** Writes every changed counter in one store call; returns the rows written. On error nothing is lost. */
  flush(now = this.clock.now()): number {
    const rows = this.ended.slice();
    const written: Counter[] = [];
    for (const c of this.dirty) {
      if (!c.dirty) continue; // retired, or listed twice
      c.dirty = false;
      written.push(c);
      rows.push({ scope: c.scope, periodStart: c.periodStart, used: c.used });
    }
    try {
      this.store.save(rows, now);
    } catch (err) {
      for (const c of written) c.dirty = true;
      throw err;
    }
    this.dirty = [];
    this.ended = [];
    return rows.length;
  }

  /** Drops counters whose period has ended (their final value is kept for the next flush). */
  sweep(now: number): number {
    let removed = 0;
    for (const scope of [this.byTenant, this.byKey]) {
      for (const [counter, counters] of scope) {
        for (const [identity, c] of counters) {
          if (now >= c.periodEnd) {
            this.retire(c);
            counters.delete(identity);
            removed++;
          }
        }
        if (counters.size === 0) scope.delete(counter);
      }
    }
    for (const [scope, row] of this.seeds)
      if (row.periodStart < now - LONGEST_PERIOD_MS) this.seeds.delete(scope);
    return removed;
  }

  /** Counters currently held. */
  get size(): number {
    let n = 0;
    for (const scope of [this.byTenant, this.byKey])
      for (const counters of scope.values()) n += counters.size;
    return n;
  }

  private periodAt(quota: CompiledQuota, now: number): Period {
    let p = this.periods.get(quota);
    if (p === undefined || now < p.start || now >= p.end) {
      p = periodOf(quota, now);
      this.periods.set(quota, p);
    }
    return p;
  }

  private claimSeed(scope: string, periodStart: number): number {
    const row = this.seeds.get(scope);
    if (row === undefined || row.periodStart !== periodStart) return 0;
    this.seeds.delete(scope);
    return row.used;
  }

  private retire(c: Counter): void {
    if (!c.dirty) return;
    this.ended.push({ scope: c.scope, periodStart: c.periodStart, used: c.used });
    c.dirty = false;
  }
}
