/**
 * Deadlines of requests in flight (an upstream's first-byte and idle timeouts), kept in one list per
 * timeout value instead of one timer per request. Every deadline added to a list is `ms` from now,
 * so the list is in due order by construction: adding appends, cancelling unlinks in O(1), and one
 * timer on the scheduler waits for the head. A timer per request cost two system timer operations
 * per request (and as many again per body chunk); a shared coarse timer (a set scanned every 50 ms)
 * cost latency instead. Here a deadline still fires at its own due time.
 *
 * The timer is not moved when the head is cancelled, nor stopped when the list empties (that would
 * cost what this saves, at any load where requests rarely overlap): it fires at the old due time,
 * finds nothing due and waits for the new head, if any. With `exact`, for test mode, the timer
 * always sits at the earliest live deadline, because the scenario runner reads the next timer as
 * the next moment something happens.
 */
import type { Cancel, Scheduler } from "./scheduler.ts";

export interface Deadline {
  /** Forgets the deadline; its task never runs. Safe to call more than once, or after it ran. */
  cancel(): void;
  /** Moves the deadline to `ms` (the list's timeout) from now, as if added again. */
  renew(): void;
}

/** What runs deadlines: Deadlines here; a benchmark injects a timer per deadline to compare. */
export interface DeadlineSource {
  /** Runs `task` `ms` from now unless cancelled first. */
  after(ms: number, task: () => void): Deadline;
}

export interface DeadlineOptions {
  scheduler: Scheduler;
  /** The scheduler's time, in ms: the real monotonic clock, or test mode's virtual one. */
  now: () => number;
  /** Keep the timer at the earliest live deadline (test mode). */
  exact?: boolean;
}

export class Deadlines implements DeadlineSource {
  private readonly lists = new Map<number, DeadlineList>();

  constructor(private readonly o: DeadlineOptions) {}

  after(ms: number, task: () => void): Deadline {
    let list = this.lists.get(ms);
    if (!list) {
      list = new DeadlineList(ms, this.o);
      this.lists.set(ms, list);
    }
    return list.add(task);
  }

  /** Deadlines waiting, in every list. */
  get pending(): number {
    let n = 0;
    for (const list of this.lists.values()) n += list.size;
    return n;
  }
}

class Entry implements Deadline {
  prev: Entry | null = null;
  next: Entry | null = null;
  due = 0;
  linked = false;

  constructor(
    private readonly list: DeadlineList,
    readonly task: () => void,
  ) {}

  cancel(): void {
    if (this.linked) this.list.remove(this);
  }

  renew(): void {
    if (this.linked) this.list.remove(this);
    this.list.append(this);
  }
}

class DeadlineList {
  private head: Entry | null = null;
  private tail: Entry | null = null;
  size = 0;
  private timer: Cancel | null = null;
  private timerDue = 0;
  private firing = false;

  constructor(
    private readonly ms: number,
    private readonly o: DeadlineOptions,
  ) {}

  add(task: () => void): Entry {
    const entry = new Entry(this, task);
    this.append(entry);
    return entry;
  }

  append(entry: Entry): void {
    entry.due = this.o.now() + this.ms;
    entry.prev = this.tail;
    entry.next = null;
    if (this.tail) this.tail.next = entry;
    else this.head = entry;
    this.tail = entry;
    entry.linked = true;
    this.size++;
    if (this.timer === null && !this.firing) this.arm();
  }

  remove(entry: Entry): void {
    const wasHead = entry === this.head;
    if (entry.prev) entry.prev.next = entry.next;
    else this.head = entry.next;
    if (entry.next) entry.next.prev = entry.prev;
    else this.tail = entry.prev;
    entry.prev = entry.next = null;
    entry.linked = false;
    this.size--;
    if (this.firing || !wasHead || !this.o.exact) return;
    // With `exact`, the timer follows the new head, and an empty list keeps none.
    if (this.head === null || this.head.due !== this.timerDue) {
      this.timer?.();
      this.timer = null;
      if (this.head !== null) this.arm();
    }
  }

  private arm(): void {
    const due = this.head!.due;
    this.timerDue = due;
    // Rounded up: a real timer that fires a fraction early would find nothing due.
    this.timer = this.o.scheduler.after(Math.max(0, Math.ceil(due - this.o.now())), () => this.fire());
  }

  private fire(): void {
    this.timer = null;
    this.firing = true;
    try {
      const now = this.o.now();
      while (this.head !== null && this.head.due <= now) {
        const entry = this.head;
        this.remove(entry);
        entry.task();
      }
    } finally {
      this.firing = false;
      if (this.head !== null && this.timer === null) this.arm();
    }
  }
}
