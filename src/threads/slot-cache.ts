/**
 * One thread's map from counters (a limit or quota declaration and the uid of the tenant or key it
 * counts) to the shared slots that hold them. The main thread gives the slots out (directory.ts);
 * a thread asks only for counters it has not met, or whose slot was taken back since, and checks
 * that under the lock before every use: a slot's generation changes when it is taken back, so a
 * thread never counts in a slot that now belongs to another counter.
 */
import type { CompiledQuota, KeyView, TenantView } from "../gateway/snapshot.ts";
import type { QuotaCounter } from "../policies/limits/quota-counters.ts";
import { QUOTA, QUOTA_FIELDS, type SharedViews, type SlotKind, stripeOf } from "./memory.ts";

/** A counter a thread needs a slot for. */
export type Want =
  | {
      readonly kind: "window";
      readonly perKey: boolean;
      readonly counter: string;
      readonly identity: string;
      readonly windowMs: number;
    }
  | { readonly kind: "quota"; readonly quota: CompiledQuota; readonly identity: string }
  | { readonly kind: "cap"; readonly identity: string };

/** Per want, in order: its slot and the slot's generation. */
export type Granted = number[];

/** Gives slots for wants: the main thread's directory at once, a worker's message to it later. */
export type AskSlots = (wants: Want[]) => Granted | Promise<Granted>;

/** A slot as this thread last learned it. */
export class Held {
  constructor(
    readonly slot: number,
    readonly gen: number,
    /** The lock of the tenant or key it counts. */
    readonly stripe: number,
  ) {}
}

/** A quota's slot; reads its period and count from shared memory (under the lock). */
export class HeldQuota extends Held implements QuotaCounter {
  constructor(
    slot: number,
    gen: number,
    stripe: number,
    private readonly values: Float64Array,
    /** The declaration it was last judged by: a reload may change its period. */
    public quota: CompiledQuota,
    readonly identity: string,
  ) {
    super(slot, gen, stripe);
  }

  get scope(): string {
    return `${this.quota.by}:${this.identity}:${this.quota.counter}`;
  }

  get periodStart(): number {
    return this.values[this.slot * QUOTA_FIELDS + QUOTA.start]!;
  }

  get periodEnd(): number {
    return this.values[this.slot * QUOTA_FIELDS + QUOTA.end]!;
  }

  get used(): number {
    return this.values[this.slot * QUOTA_FIELDS + QUOTA.used]!;
  }
}

type Scoped<T> = Map<string, Map<string, T>>;

function get<T>(scope: Scoped<T>, counter: string, identity: string): T | undefined {
  return scope.get(counter)?.get(identity);
}

function put<T>(scope: Scoped<T>, counter: string, identity: string, held: T): void {
  let m = scope.get(counter);
  if (m === undefined) {
    m = new Map();
    scope.set(counter, m);
  }
  m.set(identity, held);
}

export class SlotCache {
  private readonly tenantWindows: Scoped<Held> = new Map();
  private readonly keyWindows: Scoped<Held> = new Map();
  private readonly tenantQuotas: Scoped<HeldQuota> = new Map();
  private readonly keyQuotas: Scoped<HeldQuota> = new Map();
  private readonly caps = new Map<string, Held>();

  constructor(
    readonly views: SharedViews,
    private readonly ask: AskSlots,
  ) {}

  window(perKey: boolean, counter: string, identity: string): Held | undefined {
    return get(perKey ? this.keyWindows : this.tenantWindows, counter, identity);
  }

  quota(by: "tenant" | "key", counter: string, identity: string): HeldQuota | undefined {
    return get(by === "key" ? this.keyQuotas : this.tenantQuotas, counter, identity);
  }

  cap(identity: string): Held | undefined {
    return this.caps.get(identity);
  }

  /** Whether `held` is still its counter's slot; only meaningful under the lock of its stripe. */
  current(kind: SlotKind, held: Held | undefined): held is Held {
    return held !== undefined && Atomics.load(this.views.gens(kind), held.slot) === held.gen;
  }

  /**
   * What a request of `tenant` with `key` counts in and this thread holds no current slot for, or
   * null when it holds them all. Call it under the locks of both (see limits.ts): the answer then
   * holds until they are released. The same counters as policies/limits/policy.ts touches.
   */
  missing(tenant: TenantView, key: KeyView): Want[] | null {
    let wants: Want[] | null = null;
    const want = (w: Want) => {
      if (wants === null) wants = [w];
      else wants.push(w);
    };
    const nt = tenant.limits.length;
    for (let i = 0; i < nt + key.limits.length; i++) {
      const limit = i < nt ? tenant.limits[i]! : key.limits[i - nt]!;
      const perKey = i >= nt || limit.by === "key";
      const identity = perKey ? key.uid : tenant.uid;
      if (!this.current("window", this.window(perKey, limit.counter, identity))) {
        want({
          kind: "window",
          perKey,
          counter: limit.counter,
          identity,
          windowMs: limit.windowMs,
        });
      }
    }
    const nq = tenant.quotas.length;
    for (let j = 0; j < nq + key.quotas.length; j++) {
      const quota = j < nq ? tenant.quotas[j]! : key.quotas[j - nq]!;
      const identity = quota.by === "key" ? key.uid : tenant.uid;
      if (!this.current("quota", this.quota(quota.by, quota.counter, identity))) {
        want({ kind: "quota", quota, identity });
      }
    }
    if (tenant.concurrency !== null && !this.current("cap", this.caps.get(tenant.uid))) {
      want({ kind: "cap", identity: tenant.uid });
    }
    return wants;
  }

  /** Learns slots for `wants` (at once on the main thread, after a message on a worker). */
  fetch(wants: Want[]): void | Promise<void> {
    const granted = this.ask(wants);
    if (granted instanceof Promise) return granted.then((g) => this.learn(wants, g));
    this.learn(wants, granted);
  }

  /** Forgets slots that were taken back, so counters no longer used cost this thread nothing. */
  prune(): number {
    let dropped = 0;
    const sweep = <T extends Held>(kind: SlotKind, scope: Scoped<T>) => {
      for (const [counter, m] of scope) {
        for (const [identity, held] of m) {
          if (!this.current(kind, held)) {
            m.delete(identity);
            dropped++;
          }
        }
        if (m.size === 0) scope.delete(counter);
      }
    };
    sweep("window", this.tenantWindows);
    sweep("window", this.keyWindows);
    sweep("quota", this.tenantQuotas);
    sweep("quota", this.keyQuotas);
    for (const [identity, held] of this.caps) {
      if (!this.current("cap", held)) {
        this.caps.delete(identity);
        dropped++;
      }
    }
    return dropped;
  }

  private learn(wants: Want[], granted: Granted): void {
    wants.forEach((w, n) => {
      const slot = granted[2 * n]!;
      const gen = granted[2 * n + 1]!;
      const stripe = stripeOf(w.identity);
      // A new object, never an updated one: a request that captured the old one finds it stale.
      if (w.kind === "window") {
        put(
          w.perKey ? this.keyWindows : this.tenantWindows,
          w.counter,
          w.identity,
          new Held(slot, gen, stripe),
        );
      } else if (w.kind === "quota") {
        const q = w.quota;
        put(
          q.by === "key" ? this.keyQuotas : this.tenantQuotas,
          q.counter,
          w.identity,
          new HeldQuota(slot, gen, stripe, this.views.quotas, q, w.identity),
        );
      } else {
        this.caps.set(w.identity, new Held(slot, gen, stripe));
      }
    });
  }
}
