/**
 * The shared counters of a cluster, put together: the connection, the policy that decides in
 * Redis, the local share that decides without it, the leases, and the probe that keeps a heartbeat
 * (how many nodes there are), notices when Redis is back and merges what was counted meanwhile.
 */
import type { Clock } from "../../lib/clock.ts";
import type { Log } from "../../lib/log.ts";
import type { Cancel, Scheduler } from "../../lib/scheduler.ts";
import type { QuotaCounters } from "../../policies/limits/quota-counters.ts";
import { RedisConnection, StoreUnavailable } from "./client.ts";
import { ClusterHealth } from "./health.ts";
import { RedisKeys } from "./keys.ts";
import { Leases } from "./leases.ts";
import { LocalShare } from "./local-share.ts";
import { ClusterQuotas } from "./quota-admin.ts";
import { heartbeatScript, mergeScript } from "./scripts.ts";
import type { RedisSettings } from "./settings.ts";
import { createSharedLimitsPolicy, type SharedLimitsPolicy } from "./shared-limits.ts";

export { RedisConnection } from "./client.ts";
export { ClusterHealth, type ClusterReading, type DecidedBy } from "./health.ts";
export { type RedisSettings, redisSettings } from "./settings.ts";

/** How often the probe beats and checks; a node counts as alive for five beats. */
const PROBE_MS = 1000;
const ALIVE_MS = 5 * PROBE_MS;

export interface SharedCountersOptions {
  readonly settings: RedisSettings;
  readonly clock: Clock;
  /** gatehouse's scheduler: lease renewals follow its clock (test mode moves it). */
  readonly scheduler: Scheduler;
  /** Real time, also in test mode: deadlines and the probe are about the network, not the clock. */
  readonly realScheduler: Scheduler;
  /** The node's quota counters, kept as a copy of Redis's. */
  readonly quotas: QuotaCounters;
  readonly log: Log;
  /** How long keys outlive what they count; test mode keeps them a day, as its clock may stand still. */
  readonly keepMs: number;
  /** A connection opened before (serve connects before it listens). */
  readonly connection?: RedisConnection;
}

export interface SharedCounters {
  readonly policy: SharedLimitsPolicy;
  readonly health: ClusterHealth;
  readonly quotas: ClusterQuotas;
  /** Settles once the first probe has run (Redis reached, or found unreachable). */
  readonly ready: Promise<void>;
  /** Leases held by requests in flight. */
  readonly leasesHeld: () => number;
  /** Runs the probe now (it also runs every second): heartbeat, node count, and the merge after an outage. */
  probe(): Promise<void>;
  /** Resolves once what requests sent to Redis after their end (settlements, releases) was answered. */
  idle(): Promise<void>;
  stop(): Promise<void>;
}

/** Opens the connection; resolves either way (unreachable is a state, not a start-up error). */
export async function connectRedis(
  settings: RedisSettings,
  realScheduler: Scheduler,
): Promise<RedisConnection> {
  const connection = new RedisConnection({
    url: settings.url,
    timeoutMs: settings.timeoutMs,
    scheduler: realScheduler,
  });
  await connection.connect().catch(() => {});
  return connection;
}

export function startSharedCounters(opts: SharedCountersOptions): SharedCounters {
  const { settings, clock, log, keepMs, quotas } = opts;
  const nodeId = crypto.randomUUID();
  const keys = new RedisKeys(settings.keyPrefix);
  const health = new ClusterHealth(settings.onStoreError, settings.nodes, clock, log);
  const connection =
    opts.connection ??
    new RedisConnection({ url: settings.url, timeoutMs: settings.timeoutMs, scheduler: opts.realScheduler });
  connection.onClose = (reason) => health.failed(new StoreUnavailable("disconnected", reason));
  const failed = (err: StoreUnavailable) => health.failed(err);
  const local = new LocalShare(clock, quotas, keys, () => health.nodes);
  const leases = new Leases(
    connection,
    clock,
    nodeId,
    settings.leaseMs,
    keepMs,
    () => health.healthy,
    opts.scheduler,
    failed,
  );
  const policy = createSharedLimitsPolicy({
    clock,
    connection,
    keys,
    quotas,
    health,
    local,
    leases,
    onStoreError: settings.onStoreError,
    keepMs,
    log,
  });
  // Connected already (serve): decide in Redis from the first request; the probe counts the nodes.
  health.healthy = connection.connected;

  /** Adds what was counted here without Redis; what it cannot deliver is put back. */
  async function merge(): Promise<{ windows: number; quotas: number }> {
    const now = clock.now();
    const groups = [...local.take(now)];
    const merged = { windows: 0, quotas: 0 };
    for (let g = 0; g < groups.length; g++) {
      const counts = groups[g]![1];
      const args: (string | number)[] = [now, keepMs, counts.windows.length, counts.quotas.length];
      for (const w of counts.windows) args.push(w.windowMs, w.buckets.length / 2, ...w.buckets);
      for (const q of counts.quotas)
        args.push(q.units, q.whole, Math.max(0, q.touched.counter.periodEnd - now));
      let reply: number[];
      try {
        reply = (await connection.run(
          mergeScript,
          [...counts.windows.map((w) => w.key), ...counts.quotas.map((q) => q.key)],
          args,
        )) as number[];
      } catch (err) {
        for (const [, rest] of groups.slice(g)) local.putBack(rest);
        throw err;
      }
      counts.quotas.forEach((q, n) => {
        const c = q.touched.counter;
        // Counted here again meanwhile: the next merge or decision brings it in line.
        if (!local.countedSince(q.key) && c.periodStart === q.touched.periodStart) quotas.set(c, reply[n]!);
      });
      merged.windows += counts.windows.length;
      merged.quotas += counts.quotas.length;
    }
    return merged;
  }

  let probing: Promise<void> | null = null;
  const probe = (): Promise<void> =>
    (probing ??= (async () => {
      try {
        await connection.connect();
        const n = await connection.run(
          heartbeatScript,
          [keys.nodes()],
          [clock.now(), nodeId, ALIVE_MS, keepMs],
        );
        health.nodes = Math.max(1, Number(n));
        if (!health.healthy || local.pending) {
          const merged = await merge();
          await leases.releaseOrphans();
          health.recovered(merged);
        }
      } catch (err) {
        if (!(err instanceof StoreUnavailable)) throw err;
        health.probeFailed(err);
      } finally {
        probing = null;
      }
    })());
  const ready = probe().catch((err) => log("error", "cluster probe failed", { error: String(err) }));
  const stopProbe: Cancel = opts.realScheduler.every(PROBE_MS, () =>
    probe().catch((err) => log("error", "cluster probe failed", { error: String(err) })),
  );

  return {
    policy,
    health,
    quotas: new ClusterQuotas({ connection, keys, quotas, health, clock, keepMs }),
    ready,
    leasesHeld: () => leases.size,
    probe,
    async idle() {
      await policy.settled();
      await leases.released();
    },
    async stop() {
      stopProbe();
      leases.stop();
      await policy.settled();
      await leases.released();
      await probing?.catch(() => {});
      if (health.healthy) {
        // Gone at once from the node count, rather than after its heartbeat runs out.
        await connection.send("ZREM", [keys.nodes(), nodeId]).catch(() => {});
      }
      connection.close();
    },
  };
}
