import type { CompiledLimit } from "../../gateway/snapshot.ts";

/**
 * Sliding-window counters, one per (limit, identity), for every request's hot path. A limit is told
 * apart by its `counter` (where it is declared and its name), an identity by the uid of the tenant or
 * key it counts, so two declarations never share a counter and a re-created id starts clean.
 *
 * Algorithm: each limit's window W is cut into buckets of width b = ceil(W / 20) ms aligned to the
 * epoch (n = ceil(W / b) ≤ 20 buckets cover W; a ring of n + 1 holds them). A request at time t is
 * judged against the FULL contents of every bucket that overlaps (t − W, t] — conservative counting.
 *
 * Safety — in any interval (s − W, s] at most `limit` units are admitted. Take the last request
 * admitted in that interval, at time t ≤ s. Every earlier admission in the interval happened in
 * (s − W, t] ⊆ (t − W, t], so it sits in a bucket that overlaps (t − W, t] and was counted when t was
 * judged; t was admitted only if that count plus its own cost was ≤ limit.
 *
 * Liveness — the buckets counted at t start after t − W − b, so a request is refused only if more than
 * `limit − cost` units were admitted in (t − W − b, t] (the tests check exactly this against a sliding
 * log). Take even traffic: cost-c requests every p ms at a rate below 90 %, c·W/p < 0.9·limit, with c
 * dividing limit. Fewer than (W + b)/p < 0.9·(limit/c)·(1 + b/W) earlier requests fall in that span.
 * For W > 20 ms, b = ceil(W/20) < W/20 + 1 gives 1 + b/W < 1.05 + 1/21, so fewer than 0.99·limit/c
 * precede t: at most limit/c − 1, and t fits. For W ≤ 20 ms, b = 1 and the count is exact. Arrivals
 * rounded down to whole ms keep the bound. So such a client is never refused, down to limit 1.
 *
 * Post-paid units — a route that measures its cost from the response counts the route's cost when the
 * request is admitted and the measured surplus when the response ends (`charge`), at that end's time
 * and over the limit if need be. Admission is judged on everything counted before it, surpluses
 * included, so once they fill the window the next request is refused until enough has left it. The
 * safety argument above then bounds what was counted at admissions: in any interval (s − W, s], the
 * units counted up to its last admission t (admitted costs and surpluses recorded by t) are at most
 * `limit`; only surpluses recorded in (t, s], after that last admission, can take the interval
 * beyond it. Units are never taken back, so nothing here can make a count smaller than it was when
 * a later request was judged.
 *
 * Memory — per (limit, identity): 4 float64 of metadata (window, newest bucket, its ring position,
 * total) and 21 uint32 bucket counts in shared typed arrays = 116 bytes, plus one Map entry (the
 * identity string is the snapshot's own, not a copy); the arrays grow by doubling, so up to as much
 * again may be reserved. bench/limits.ts measures the whole. A bucket never holds more than `limit`
 * units, so limits above 2^32 − 1 are clamped to it.
 */

const BUCKETS = 20;
const STRIDE = BUCKETS + 1;
// Per slot: [windowMs, newest bucket index, its position in the ring, total units in the ring].
// Positions are kept, not derived, because bucket indices exceed 2^31 and `%` on them is slow.
const META = 4;
const MAX_COUNT = 0xffff_ffff;

/** Bucket width in ms for a window. */
const widthOf = (windowMs: number) => Math.max(1, Math.ceil(windowMs / BUCKETS));
/** Ring length: the n buckets covering the window plus the partly overlapping oldest one. */
const ringOf = (windowMs: number, width: number) => Math.ceil(windowMs / width) + 1;

/** The effective limit (see the note on clamping above). */
export const capOf = (limit: CompiledLimit) => Math.min(limit.limit, MAX_COUNT);

export class SlidingWindows {
  private readonly byTenant = new Map<string, Map<string, number>>();
  private readonly byKey = new Map<string, Map<string, number>>();
  private meta = new Float64Array(META * 256);
  private counts = new Uint32Array(STRIDE * 256);
  private capacity = 256;
  private next = 0;
  private readonly free: number[] = [];
  private live = 0;

  /** Counters currently held (one per limit and identity). */
  get size(): number {
    return this.live;
  }

  /**
   * A handle on the counter of `limit` for `identity`, advanced to `now`. `perKey` says whether
   * `identity` is a key's uid or a tenant's (the two never share counters). Valid until the next
   * `sweep`; only use it within one synchronous step.
   */
  slot(limit: CompiledLimit, identity: string, now: number, perKey = limit.by === "key"): number {
    const scope = perKey ? this.byKey : this.byTenant;
    let slots = scope.get(limit.counter);
    if (slots === undefined) {
      slots = new Map();
      scope.set(limit.counter, slots);
    }
    let s = slots.get(identity);
    if (s === undefined) {
      s = this.allocate(limit.windowMs, now);
      slots.set(identity, s);
    } else {
      this.advance(s, limit.windowMs, now);
    }
    return s;
  }

  /** Units counted against the window ending at `now` (conservatively: whole overlapping buckets). */
  used(s: number, now: number): number {
    const m = s * META;
    const total = this.meta[m + 3]!;
    if (total === 0) return 0;
    const w = this.meta[m]!;
    const b = widthOf(w);
    const ring = ringOf(w, b);
    const oldest = this.meta[m + 1]! - ring + 1;
    // Only the oldest bucket of the ring can lie wholly before the window.
    if (oldest < 0 || Math.floor((now - w + 1) / b) <= oldest) return total;
    const p = this.meta[m + 2]! + 1;
    return total - this.counts[s * STRIDE + (p === ring ? 0 : p)]!;
  }

  /** Counts `cost` units at `now`; the caller has checked that they fit. */
  add(s: number, cost: number): void {
    const m = s * META;
    this.counts[s * STRIDE + this.meta[m + 2]!]! += cost;
    this.meta[m + 3]! += cost;
  }

  /**
   * Counts `units` at `now` without judging them, over the limit if need be: the surplus of a cost
   * measured when a response ended. The counter keeps the window it has: the limit may be a
   * snapshot older than the counter (a reload since the request was admitted).
   */
  charge(limit: CompiledLimit, identity: string, perKey: boolean, units: number, now: number): void {
    const scope = perKey ? this.byKey : this.byTenant;
    let s = scope.get(limit.counter)?.get(identity);
    if (s === undefined) s = this.slot(limit, identity, now, perKey);
    else this.advance(s, this.meta[s * META]!, now);
    // A bucket holds at most 2^32 − 1 units; past that, the window is full whatever the limit.
    const at = s * STRIDE + this.meta[s * META + 2]!;
    const added = Math.min(units, MAX_COUNT - this.counts[at]!);
    this.counts[at]! += added;
    this.meta[s * META + 3]! += added;
  }

  /**
   * Milliseconds from `now` until `cost` more units fit under `limit` if nothing else is admitted
   * meanwhile: the moment enough of the oldest buckets have left the window. 0 when they fit now,
   * Infinity when `cost` exceeds the limit itself.
   */
  msUntilFits(s: number, limit: number, cost: number, now: number): number {
    const need = this.used(s, now) + cost - limit;
    if (need <= 0) return 0;
    if (cost > limit) return Number.POSITIVE_INFINITY;
    return this.scan(s, now, need);
  }

  /** Milliseconds from `now` until everything counted now has left the window (0 when empty). */
  msUntilEmpty(s: number, now: number): number {
    if (this.used(s, now) === 0) return 0;
    // The newest non-empty bucket leaves last; it is usually the head, so walk back from there.
    const m = s * META;
    const w = this.meta[m]!;
    const b = widthOf(w);
    const ring = ringOf(w, b);
    const c = s * STRIDE;
    let p = this.meta[m + 2]!;
    let k = this.meta[m + 1]!;
    while (this.counts[c + p] === 0) {
      k--;
      if (--p < 0) p = ring - 1;
    }
    return Math.max(0, (k + 1) * b + w - 1 - now);
  }

  /**
   * Takes a counter out, as it stands at `now`: its window length and, for each non-empty bucket
   * still in the window, its index and units (bucket k holds [k·b, (k+1)·b), b = ceil(W / 20)).
   * The counter is dropped; null when there is none. For copying what one node counted on its own
   * into the shared counters (cluster/redis/local-share.ts).
   */
  take(
    counter: string,
    identity: string,
    perKey: boolean,
    now: number,
  ): { windowMs: number; buckets: number[] } | null {
    const scope = perKey ? this.byKey : this.byTenant;
    const slots = scope.get(counter);
    const s = slots?.get(identity);
    if (slots === undefined || s === undefined) return null;
    const m = s * META;
    const w = this.meta[m]!;
    this.advance(s, w, now);
    const b = widthOf(w);
    const ring = ringOf(w, b);
    const head = this.meta[m + 1]!;
    const first = Math.max(head - ring + 1, Math.floor((now - w + 1) / b), 0);
    let p = this.meta[m + 2]! - (head - first);
    if (p < 0) p += ring;
    const buckets: number[] = [];
    for (let k = first; k <= head; k++) {
      const units = this.counts[s * STRIDE + p]!;
      if (units > 0) buckets.push(k, units);
      if (++p === ring) p = 0;
    }
    slots.delete(identity);
    if (slots.size === 0) scope.delete(counter);
    this.release(s);
    return { windowMs: w, buckets };
  }

  /** Drops counters whose every bucket has left the window; returns how many. */
  sweep(now: number): number {
    let removed = 0;
    for (const scope of [this.byTenant, this.byKey]) {
      for (const [counter, slots] of scope) {
        for (const [identity, s] of slots) {
          const m = s * META;
          const w = this.meta[m]!;
          if (now >= (this.meta[m + 1]! + 1) * widthOf(w) + w - 1) {
            slots.delete(identity);
            this.release(s);
            removed++;
          }
        }
        if (slots.size === 0) scope.delete(counter);
      }
    }
    return removed;
  }

  /** Walks buckets oldest first until `need` units have left; returns when the last of them leaves. */
  private scan(s: number, now: number, need: number): number {
    const m = s * META;
    const w = this.meta[m]!;
    const head = this.meta[m + 1]!;
    const b = widthOf(w);
    const ring = ringOf(w, b);
    const c = s * STRIDE;
    const first = Math.max(head - ring + 1, Math.floor((now - w + 1) / b), 0);
    let p = this.meta[m + 2]! - (head - first);
    if (p < 0) p += ring;
    let freed = 0;
    for (let k = first; k <= head; k++) {
      freed += this.counts[c + p]!;
      // Bucket k stops overlapping (t − W, t] once t − W + 1 ≥ (k + 1)·b.
      if (freed >= need) return Math.max(0, (k + 1) * b + w - 1 - now);
      if (++p === ring) p = 0;
    }
    return Number.POSITIVE_INFINITY;
  }

  /** Moves the ring forward to `now`, emptying the buckets that fell out of it. */
  private advance(s: number, windowMs: number, now: number): void {
    const m = s * META;
    if (this.meta[m] !== windowMs) this.rebucket(s, windowMs, now);
    const b = widthOf(windowMs);
    const steps = Math.floor(now / b) - this.meta[m + 1]!;
    // A clock that steps back keeps the newer head: counting stays conservative.
    if (steps <= 0) return;
    this.meta[m + 1]! += steps;
    if (this.meta[m + 3] === 0) return;
    const ring = ringOf(windowMs, b);
    const c = s * STRIDE;
    if (steps >= ring) {
      this.counts.fill(0, c, c + ring);
      this.meta[m + 3] = 0;
      return;
    }
    let p = this.meta[m + 2]!;
    let total = this.meta[m + 3]!;
    for (let k = 0; k < steps; k++) {
      if (++p === ring) p = 0;
      total -= this.counts[c + p]!;
      this.counts[c + p] = 0;
    }
    this.meta[m + 2] = p;
    this.meta[m + 3] = total;
  }

  /**
   * The limit's window changed under a live counter (a reload). Each old bucket's units move to the
   * new bucket holding that old bucket's LAST millisecond, so they are counted at least as long as
   * they really happened within the new window; safety holds across the change.
   */
  private rebucket(s: number, windowMs: number, now: number): void {
    const m = s * META;
    const oldW = this.meta[m]!;
    const oldB = widthOf(oldW);
    const oldRing = ringOf(oldW, oldB);
    const oldHead = this.meta[m + 1]!;
    const b = widthOf(windowMs);
    const ring = ringOf(windowMs, b);
    const c = s * STRIDE;
    const moved: number[] = [];
    let head = Math.floor(now / b);
    let p = this.meta[m + 2]!;
    for (let k = oldHead; k > oldHead - oldRing && k >= 0; k--) {
      const units = this.counts[c + p]!;
      if (--p < 0) p = oldRing - 1;
      if (units === 0) continue;
      const to = Math.floor(((k + 1) * oldB - 1) / b);
      moved.push(to, units);
      if (to > head) head = to;
    }
    this.counts.fill(0, c, c + STRIDE);
    let total = 0;
    for (let i = 0; i < moved.length; i += 2) {
      const back = head - moved[i]!;
      if (back >= ring) continue; // wholly before the window at now
      this.counts[c + (back === 0 ? 0 : ring - back)]! += moved[i + 1]!;
      total += moved[i + 1]!;
    }
    this.meta[m] = windowMs;
    this.meta[m + 1] = head;
    this.meta[m + 2] = 0;
    this.meta[m + 3] = total;
  }

  private allocate(windowMs: number, now: number): number {
    let s = this.free.pop();
    if (s === undefined) {
      if (this.next === this.capacity) this.grow();
      s = this.next++;
    }
    const m = s * META;
    this.meta[m] = windowMs;
    this.meta[m + 1] = Math.floor(now / widthOf(windowMs));
    this.meta[m + 2] = 0;
    this.meta[m + 3] = 0;
    this.counts.fill(0, s * STRIDE, s * STRIDE + STRIDE);
    this.live++;
    return s;
  }

  private release(s: number): void {
    this.free.push(s);
    this.live--;
  }

  private grow(): void {
    this.capacity *= 2;
    const meta = new Float64Array(META * this.capacity);
    meta.set(this.meta);
    this.meta = meta;
    const counts = new Uint32Array(STRIDE * this.capacity);
    counts.set(this.counts);
    this.counts = counts;
  }
}
