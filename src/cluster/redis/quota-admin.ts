/**
 * The control API's quota routes in a cluster: counts are read from Redis before they are shown, and
 * a reset or credit is made there (atomically, so no node's count in between is lost) before the
 * node's copy follows. Either answers false when Redis cannot be reached: nothing was changed.
 */
import type { CompiledQuota, KeyView, TenantView } from "../../gateway/snapshot.ts";
import type { Clock } from "../../lib/clock.ts";
import type { QuotaCounter, QuotaCounters } from "../../policies/limits/quota-counters.ts";
import { type RedisConnection, StoreUnavailable } from "./client.ts";
import type { ClusterHealth } from "./health.ts";
import type { RedisKeys } from "./keys.ts";
import { quotaChangeScript } from "./scripts.ts";

/** A quota and the node's counter of it (its current period). */
export interface CountedQuota {
  readonly quota: CompiledQuota;
  readonly counter: QuotaCounter;
}

export interface QuotaChange extends CountedQuota {
  /** set: used becomes `units`; credit: used goes down by `units`, never below 0. */
  readonly how: "set" | "credit";
  readonly units: number;
}

export class ClusterQuotas {
  constructor(
    private readonly deps: {
      connection: RedisConnection;
      keys: RedisKeys;
      quotas: QuotaCounters;
      health: ClusterHealth;
      clock: Clock;
      keepMs: number;
    },
  ) {}

  /** Brings the node's copies of a tenant's (and key's) counters up to Redis's counts. */
  async read(tenant: TenantView, key: KeyView | null, counted: readonly CountedQuota[]): Promise<boolean> {
    if (counted.length === 0) return true;
    const { connection, keys, quotas } = this.deps;
    let values: (string | null)[];
    try {
      values = (await connection.send(
        "MGET",
        counted.map((c) => keys.quota(tenant, key, c.quota, c.counter.periodStart)),
      )) as (string | null)[];
    } catch (err) {
      return this.unreachable(err);
    }
    values.forEach((v, n) => {
      const c = counted[n]!.counter;
      if (v !== null && c.used !== Number(v)) quotas.set(c, Number(v));
    });
    return true;
  }

  /** Makes each change in Redis, then in the node's copy; stops at the first Redis does not take. */
  async change(tenant: TenantView, key: KeyView | null, changes: readonly QuotaChange[]): Promise<boolean> {
    const { connection, keys, quotas, clock, keepMs } = this.deps;
    for (const { quota, counter: c, how, units } of changes) {
      let reply: number[];
      try {
        reply = (await connection.run(
          quotaChangeScript,
          [keys.quota(tenant, key, quota, c.periodStart)],
          [how, units, Math.max(0, c.periodEnd - clock.now()), keepMs, c.used],
        )) as number[];
      } catch (err) {
        return this.unreachable(err);
      }
      quotas.set(c, reply[1]!);
    }
    return true;
  }

  private unreachable(err: unknown): false {
    if (!(err instanceof StoreUnavailable)) throw err;
    this.deps.health.failed(err);
    return false;
  }
}
