/**
 * The main thread's directory of shared counter slots: the one owner that gives every counter (a
 * limit or quota declaration with the uid it counts, or a tenant's cap) its slot, so every thread
 * that asks gets the same one. Counters are named as on one thread (the declaration's `counter` and
 * the uid), so slots outlive reloads and snapshots, and a tenant or key created again under a
 * deleted one's id (a new uid) never meets the old counts.
 *
 * Slots are taken back as one thread's counters are swept: a window once every unit has left it, a
 * quota once its period ended and its final count was written, a cap with nothing in flight. Taking
 * back happens under the counter's lock and bumps the slot's generation, so a thread still holding
 * the old generation finds out before it reads or counts (slot-cache.ts), and a new counter given
 * the slot starts from nothing (a quota from what the database holds for its period).
 *
 * Quota counts reach the database from here alone: `quotaRows` collects what changed (and the final
 * counts of periods that ended) for the writer thread, as QuotaCounters.flush does on one thread.
 */
import { type Period, periodOf } from "../policies/limits/periods.ts";
import type { QuotaRow } from "../policies/limits/quota-store.ts";
import { WindowRing } from "../policies/limits/sliding-windows.ts";
import {
  QUOTA,
  QUOTA_FIELDS,
  type SharedMemory,
  type SharedViews,
  type SlotKind,
  slotsOf,
  stripeOf,
} from "./memory.ts";
import type { Granted, Want } from "./slot-cache.ts";

/** The longest period (a 31-day month plus a DST hour) bounds how far back seeds are read. */
const LONGEST_PERIOD_MS = 32 * 86_400_000;

/** Every slot of a kind is in use. */
export class SlotsExhausted extends Error {}

/** Empty rings for new windows, and whether one may be taken back. */
class Rings extends WindowRing {
  init(slot: number, windowMs: number, now: number): void {
    this.reset(slot, windowMs, now);
  }

  idle(slot: number, now: number): boolean {
    return this.idleAt(slot, now);
  }
}

/** One kind's slots: name → slot, and per slot its name and lock. */
class Slots {
  readonly byName = new Map<string, number>();
  readonly names: string[] = [];
  readonly stripes: number[] = [];
  private readonly free: number[] = [];
  private next = 0;
  private readonly max: number;

  constructor(
    memory: SharedMemory,
    readonly kind: SlotKind,
  ) {
    this.max = slotsOf(memory);
  }

  /** A slot for `name` (new when it has none) and whether it is new. */
  claim(name: string, identity: string): [slot: number, fresh: boolean] {
    const known = this.byName.get(name);
    if (known !== undefined) return [known, false];
    let slot = this.free.pop();
    if (slot === undefined) {
      if (this.next === this.max) {
        throw new SlotsExhausted(`all ${this.max} shared ${this.kind} counter slots are in use`);
      }
      slot = this.next++;
    }
    this.byName.set(name, slot);
    this.names[slot] = name;
    this.stripes[slot] = stripeOf(identity);
    return [slot, true];
  }

  release(slot: number): void {
    this.byName.delete(this.names[slot]!);
    this.free.push(slot);
  }

  get live(): number {
    return this.byName.size;
  }
}

/** Names as one thread's counters are keyed: kind, scope, declaration, uid. */
const windowName = (w: { perKey: boolean; counter: string; identity: string }) =>
  `${w.perKey ? "key" : "tenant"}\0${w.counter}\0${w.identity}`;
const quotaScope = (by: string, identity: string, counter: string) => `${by}:${identity}:${counter}`;

export class SlotDirectory {
  private readonly windows: Slots;
  private readonly quotas: Slots;
  private readonly caps: Slots;
  private readonly rings: Rings;
  /** Persisted counts not yet claimed by a slot: the newest row per scope. */
  private readonly seeds = new Map<string, QuotaRow>();
  private readonly periods = new WeakMap<object, Period>();
  /** Rows a failed write handed back, written with the next ones. */
  private unwritten: QuotaRow[] = [];

  constructor(
    memory: SharedMemory,
    private readonly views: SharedViews,
  ) {
    this.windows = new Slots(memory, "window");
    this.quotas = new Slots(memory, "quota");
    this.caps = new Slots(memory, "cap");
    this.rings = new Rings(views.windowMeta, views.windowCounts);
  }

  /** Reads the persisted quota counts of current periods (QuotaCounters.load). Call once, before serving. */
  loadSeeds(rows: readonly QuotaRow[]): void {
    for (const row of rows) {
      const seen = this.seeds.get(row.scope);
      if (seen === undefined || seen.periodStart < row.periodStart) this.seeds.set(row.scope, row);
    }
  }

  /** How far back loadSeeds needs rows. */
  static seedsSince(now: number): number {
    return now - LONGEST_PERIOD_MS;
  }

  /** Slots for `wants`, in order: [slot, generation, ...]. */
  grant(wants: readonly Want[], now: number): Granted {
    const out: Granted = [];
    for (const w of wants) {
      const slots = w.kind === "window" ? this.windows : w.kind === "quota" ? this.quotas : this.caps;
      const name =
        w.kind === "window"
          ? windowName(w)
          : w.kind === "quota"
            ? quotaScope(w.quota.by, w.identity, w.quota.counter)
            : w.identity;
      const [slot, fresh] = slots.claim(name, w.identity);
      // No thread holds a new slot's current generation yet, so it needs no lock.
      if (fresh) {
        if (w.kind === "window") this.rings.init(slot, w.windowMs, now);
        else if (w.kind === "quota") this.initQuota(slot, name, w.quota, now);
        else Atomics.store(this.views.caps, slot, 0);
      }
      out.push(slot, Atomics.load(this.views.gens(slots.kind), slot));
    }
    return out;
  }

  /** Takes back idle slots (see above); returns how many of each kind. */
  sweep(now: number): { windows: number; quotas: number; caps: number } {
    const q = this.views.quotas;
    for (const [scope, row] of this.seeds)
      if (row.periodStart < now - LONGEST_PERIOD_MS) this.seeds.delete(scope);
    return {
      windows: this.reclaim(this.windows, (s) => this.rings.idle(s, now)),
      quotas: this.reclaim(this.quotas, (s) => {
        const o = s * QUOTA_FIELDS;
        return now >= q[o + QUOTA.end]! && q[o + QUOTA.changed] === 0 && q[o + QUOTA.endedPending] === 0;
      }),
      caps: this.reclaim(this.caps, (s) => Atomics.load(this.views.caps, s) === 0),
    };
  }

  /**
   * Quota counts to write: every count that changed since the last call, and the final count of
   * each period that ended, as absolute values (a later row for the same period wins).
   */
  quotaRows(): QuotaRow[] {
    const rows = this.unwritten;
    this.unwritten = [];
    const v = this.views.quotas;
    for (const [scope, s] of this.quotas.byName) {
      const o = s * QUOTA_FIELDS;
      if (v[o + QUOTA.changed] === 0 && v[o + QUOTA.endedPending] === 0) continue;
      const stripe = this.quotas.stripes[s]!;
      this.views.lock(stripe);
      try {
        if (v[o + QUOTA.endedPending] === 1) {
          rows.push({ scope, periodStart: v[o + QUOTA.endedStart]!, used: v[o + QUOTA.endedUsed]! });
          v[o + QUOTA.endedPending] = 0;
        }
        if (v[o + QUOTA.changed] === 1) {
          rows.push({ scope, periodStart: v[o + QUOTA.start]!, used: v[o + QUOTA.used]! });
          v[o + QUOTA.changed] = 0;
        }
      } finally {
        this.views.unlock(stripe);
      }
    }
    return rows;
  }

  /** Rows a write refused: they go out again with the next ones. */
  unwrittenRows(rows: readonly QuotaRow[]): void {
    this.unwritten.push(...rows);
  }

  /** Slots in use, by kind. */
  get size(): { windows: number; quotas: number; caps: number } {
    return { windows: this.windows.live, quotas: this.quotas.live, caps: this.caps.live };
  }

  private initQuota(slot: number, scope: string, spec: Parameters<typeof periodOf>[0], now: number): void {
    let p = this.periods.get(spec);
    if (p === undefined || now < p.start || now >= p.end) {
      p = periodOf(spec, now);
      this.periods.set(spec, p);
    }
    const seed = this.seeds.get(scope);
    let used = 0;
    if (seed !== undefined && seed.periodStart === p.start) {
      used = seed.used;
      this.seeds.delete(scope);
    }
    const v = this.views.quotas;
    const o = slot * QUOTA_FIELDS;
    v.fill(0, o, o + QUOTA_FIELDS);
    v[o + QUOTA.start] = p.start;
    v[o + QUOTA.end] = p.end;
    v[o + QUOTA.used] = used;
  }

  private reclaim(slots: Slots, idle: (slot: number) => boolean): number {
    let n = 0;
    const gens = this.views.gens(slots.kind);
    for (const slot of slots.byName.values()) {
      const stripe = slots.stripes[slot]!;
      this.views.lock(stripe);
      try {
        if (!idle(slot)) continue;
        Atomics.add(gens, slot, 1);
      } finally {
        this.views.unlock(stripe);
      }
      slots.release(slot);
      n++;
    }
    return n;
  }
}
