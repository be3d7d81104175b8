/**
 * The memory every data-plane thread shares (server.threads > 1): the limits' counters in slots of
 * SharedArrayBuffers, one lock per stripe of tenants and keys, and the version of the snapshot the
 * threads serve. The main thread creates it and hands the buffers to each worker. Each buffer is
 * made at its largest size at once: that only reserves address space (pages are backed as slots are
 * first used), and JavaScriptCore reads fixed-length views markedly faster than the length-tracking
 * views of a growable buffer (0.15 µs per request in the limits micro-benchmark).
 *
 * Slots: a sliding window's bucket ring (policies/limits/sliding-windows.ts layout), a quota's count
 * in its period, a tenant's requests in flight. Each slot has a generation, bumped when the main
 * thread takes the slot back (threads/directory.ts): a thread holding an older generation knows its
 * slot now belongs to someone else.
 *
 * Locks: every counter a request touches counts its tenant or its key, so holding the locks of both
 * makes "judge every window, quota and the cap, then count everywhere or nowhere" one atomic step,
 * as the single-thread policy is. Uids map to 4,096 stripes by a hash; two tenants or keys in one
 * stripe only wait for each other.
 */
import { META, STRIDE } from "../policies/limits/sliding-windows.ts";

export const STRIPES = 4096;

/** Per quota slot, as Float64: the period, the count, and the last period's final count until it is written. */
export const QUOTA_FIELDS = 8;
export const QUOTA = {
  start: 0,
  end: 1,
  used: 2,
  /** 1 when `used` changed since the main thread last wrote it. */
  changed: 3,
  endedStart: 4,
  endedUsed: 5,
  /** 1 when the ended period's count is still to be written. */
  endedPending: 6,
} as const;

/** Slots of each kind: about 800 MiB of address space in all, backed only as slots are used. */
export const MAX_SLOTS = 1 << 22;

export type SlotKind = "window" | "quota" | "cap";

export interface SharedMemory {
  readonly locks: SharedArrayBuffer;
  /** Int32: [0] the snapshot version every thread serves (see threads/publish.ts). */
  readonly control: SharedArrayBuffer;
  readonly windowMeta: SharedArrayBuffer;
  readonly windowCounts: SharedArrayBuffer;
  readonly windowGens: SharedArrayBuffer;
  readonly quotas: SharedArrayBuffer;
  readonly quotaGens: SharedArrayBuffer;
  /** Int32 requests in flight per cap slot. */
  readonly caps: SharedArrayBuffer;
  readonly capGens: SharedArrayBuffer;
}

/** Bytes per slot of each buffer. */
const sizes = {
  windowMeta: META * 8,
  windowCounts: STRIDE * 4,
  windowGens: 4,
  quotas: QUOTA_FIELDS * 8,
  quotaGens: 4,
  caps: 4,
  capGens: 4,
} as const;

export function createSharedMemory(maxSlots = MAX_SLOTS): SharedMemory {
  const buffer = (perSlot: number) => new SharedArrayBuffer(perSlot * maxSlots);
  return {
    locks: new SharedArrayBuffer(STRIPES * 4),
    control: new SharedArrayBuffer(16),
    windowMeta: buffer(sizes.windowMeta),
    windowCounts: buffer(sizes.windowCounts),
    windowGens: buffer(sizes.windowGens),
    quotas: buffer(sizes.quotas),
    quotaGens: buffer(sizes.quotaGens),
    caps: buffer(sizes.caps),
    capGens: buffer(sizes.capGens),
  };
}

/** Slots of each kind the memory holds. */
export function slotsOf(memory: SharedMemory): number {
  return memory.capGens.byteLength / sizes.capGens;
}

/** Typed views on the shared buffers; each thread makes its own once. */
export class SharedViews {
  readonly locks: Int32Array;
  readonly control: Int32Array;
  readonly windowMeta: Float64Array;
  readonly windowCounts: Uint32Array;
  readonly windowGens: Int32Array;
  readonly quotas: Float64Array;
  readonly quotaGens: Int32Array;
  readonly caps: Int32Array;
  readonly capGens: Int32Array;

  constructor(readonly memory: SharedMemory) {
    this.locks = new Int32Array(memory.locks);
    this.control = new Int32Array(memory.control);
    this.windowMeta = new Float64Array(memory.windowMeta);
    this.windowCounts = new Uint32Array(memory.windowCounts);
    this.windowGens = new Int32Array(memory.windowGens);
    this.quotas = new Float64Array(memory.quotas);
    this.quotaGens = new Int32Array(memory.quotaGens);
    this.caps = new Int32Array(memory.caps);
    this.capGens = new Int32Array(memory.capGens);
  }

  gens(kind: SlotKind): Int32Array {
    return kind === "window" ? this.windowGens : kind === "quota" ? this.quotaGens : this.capGens;
  }

  /**
   * Takes stripe `i`'s lock (a futex: 0 free, 1 held, 2 held with waiters). The holder only does
   * arithmetic on typed arrays, a microsecond or two, so a few tries come before sleeping.
   */
  lock(i: number): void {
    const locks = this.locks;
    let c = Atomics.compareExchange(locks, i, 0, 1);
    if (c === 0) return;
    for (let spin = 0; spin < 32; spin++) {
      if (Atomics.load(locks, i) === 0 && Atomics.compareExchange(locks, i, 0, 1) === 0) return;
    }
    if (c !== 2) c = Atomics.exchange(locks, i, 2);
    while (c !== 0) {
      Atomics.wait(locks, i, 2);
      c = Atomics.exchange(locks, i, 2);
    }
  }

  unlock(i: number): void {
    if (Atomics.sub(this.locks, i, 1) !== 1) {
      Atomics.store(this.locks, i, 0);
      Atomics.notify(this.locks, i, 1);
    }
  }
}

/** The stripe whose lock guards a tenant's counters: FNV-1a of its uid. */
export function stripeOf(tenantUid: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < tenantUid.length; i++) {
    h ^= tenantUid.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) & (STRIPES - 1);
}
