/**
 * Names of gatehouse's keys in Redis. Counters are named like the in-process ones, by where the limit
 * or quota is declared and its name (its `counter`), and by the tenant or key counted: by its id,
 * which every node agrees on (they serve the same gateway.yaml), not by the uid each node's own
 * database gives its rows. Every key a request touches carries its tenant's id as a hash tag (`{…}`),
 * so one request's keys share one slot and its script also runs on a sharded Redis Cluster.
 */
import type { CompiledQuota, KeyView, TenantView } from "../../gateway/snapshot.ts";

export class RedisKeys {
  constructor(private readonly prefix: string) {}

  /** A sliding window of `counter`, for the tenant or (`perKey`) the key. */
  window(tenant: TenantView, key: KeyView, perKey: boolean, counter: string): string {
    return `${this.prefix}{${tenant.id}}:w:${perKey ? `k:${key.id}` : "t"}:${counter}`;
  }

  /** A quota counter (of the tenant or the key, by its `by`) in the period starting at `periodStart`. */
  quota(tenant: TenantView, key: KeyView | null, quota: CompiledQuota, periodStart: number): string {
    const who = quota.by === "key" ? `k:${key?.id}` : "t";
    return `${this.prefix}{${tenant.id}}:q:${who}:${quota.counter}:${periodStart}`;
  }

  /** The tenant's concurrency leases: a sorted set of lease ids scored by when they expire. */
  leases(tenant: TenantView): string {
    return `${this.prefix}{${tenant.id}}:c`;
  }

  /** The live nodes: a sorted set of node ids scored by when their heartbeat expires. */
  nodes(): string {
    return `${this.prefix}nodes`;
  }
}
