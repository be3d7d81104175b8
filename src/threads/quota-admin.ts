/**
 * The control API's quota routes (and the dashboard and portal) with data-plane threads: counts are
 * read from shared memory before they are shown, and a reset or credit is made there, under the
 * counter's lock, before the main thread's copy (which QuotaService shows) follows. The same seam
 * as Redis's (cluster/redis/quota-admin.ts); here it is always reachable.
 */
import type { CountedQuota, QuotaChange } from "../cluster/redis/quota-admin.ts";
import type { CompiledQuota, KeyView, TenantView } from "../gateway/snapshot.ts";
import type { Clock } from "../lib/clock.ts";
import type { QuotaCounters } from "../policies/limits/quota-counters.ts";
import type { SharedQuotas } from "./counters.ts";
import { stripeOf } from "./memory.ts";
import type { HeldQuota, SlotCache } from "./slot-cache.ts";

export class ThreadQuotas {
  constructor(
    private readonly deps: {
      /** The main thread's slots (its directory answers at once). */
      cache: SlotCache;
      quotas: SharedQuotas;
      /** What QuotaService shows: a copy, set from shared memory. */
      copy: QuotaCounters;
      clock: Clock;
      /** Writes changed counts now (a reset or credit is written at once, as on one thread). */
      flush: () => void;
    },
  ) {}

  async read(tenant: TenantView, key: KeyView | null, counted: readonly CountedQuota[]): Promise<boolean> {
    for (const { quota, counter } of counted) {
      const [start, used] = this.locked(quota, identityOf(quota, tenant, key), (held) => [
        held.periodStart,
        held.used,
      ]);
      if (counter.periodStart === start && counter.used !== used) this.deps.copy.set(counter, used);
    }
    // The copy is never written (shared memory's counts are): keep its list of changes empty.
    this.deps.copy.flush();
    return true;
  }

  async change(tenant: TenantView, key: KeyView | null, changes: readonly QuotaChange[]): Promise<boolean> {
    const { quotas, copy } = this.deps;
    for (const { quota, counter, how, units } of changes) {
      const [start, used] = this.locked(quota, identityOf(quota, tenant, key), (held) => {
        quotas.set(held, how === "set" ? units : Math.max(0, held.used - units));
        return [held.periodStart, held.used];
      });
      if (counter.periodStart === start) copy.set(counter, used);
    }
    this.deps.flush();
    return true;
  }

  /** Runs `fn` on the counter's slot, rolled to now, under its lock. */
  private locked<T>(quota: CompiledQuota, identity: string, fn: (held: HeldQuota) => T): T {
    const { cache, quotas, clock } = this.deps;
    const stripe = stripeOf(identity);
    for (;;) {
      cache.views.lock(stripe);
      try {
        if (cache.current("quota", cache.quota(quota.by, quota.counter, identity))) {
          return fn(quotas.counter(quota, identity, clock.now()) as HeldQuota);
        }
      } finally {
        cache.views.unlock(stripe);
      }
      // The main thread's directory answers at once.
      void cache.fetch([{ kind: "quota", quota, identity }]);
    }
  }
}

const identityOf = (quota: CompiledQuota, tenant: TenantView, key: KeyView | null) =>
  quota.by === "key" && key ? key.uid : tenant.uid;
