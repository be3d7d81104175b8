/**
 * Cluster mode's PostgreSQL half, assembled for the composition root (app.ts), which imports this
 * module only when `cluster.postgres` is set: one node never loads PostgreSQL's client.
 *
 * - shared objects (shared-objects.ts): API-made tenants and keys, credentials, their audit log;
 * - usage: rows and rollups shipped from each node's SQLite (ship.ts; on the writer thread when
 *   there is one), reports and exports read from PostgreSQL (usage-reads.ts), retention there too.
 */
import type { GatewayConfig } from "../../config/schema.ts";
import type { OpenDb } from "../../db/open.ts";
import type { ShipTo } from "../../db/writer-worker.ts";
import type { GatewayState } from "../../gateway/state.ts";
import { type Clock, systemClock } from "../../lib/clock.ts";
import type { Log } from "../../lib/log.ts";
import { type Scheduler, timerScheduler } from "../../lib/scheduler.ts";
import type { PostgresReading } from "../../metrics/index.ts";
import { UsageRetention } from "../../usage/retention.ts";
import type { UsageReads } from "../../usage/service.ts";
import type { Vault } from "../../vault/vault.ts";
import type { Pg } from "./connect.ts";
import { pgRetentionDeletes } from "./retention.ts";
import { SharedObjects } from "./shared-objects.ts";
import { type ShippingStatus, UsageShipper } from "./ship.ts";
import { createPgUsageReads } from "./usage-reads.ts";

export interface ClusterOptions {
  url: string;
  database: OpenDb;
  vault: Vault;
  clock: Clock;
  /** The gateway's scheduler: usage retention follows it (test mode moves it). */
  scheduler: Scheduler;
  /** For the version checks and heartbeats, which are network work (real timers, also in test mode). */
  networkScheduler: Scheduler;
  log: Log;
  config: GatewayConfig;
  configHash: string;
  retentionMs: number;
}

export interface PostgresCluster {
  readonly shared: SharedObjects;
  /** What GET /usage and GET /usage/export read. */
  readonly usage: UsageReads;
  /** For the writer thread, which ships the usage rows it writes. */
  readonly shipTo: ShipTo;
  /** The gateway state exists: start following. */
  attach(state: GatewayState): void;
  /**
   * Without a writer thread (an in-memory database, test mode) this thread ships the rows; returns the
   * id of the last row shipped, for the usage retention to keep the rest.
   */
  shipFromHere(): () => number;
  /** What /readyz says when something is off, given the shipping status the writer thread reports. */
  problem(shipping: ShippingStatus | null): string | null;
  /** The shipping status when this thread ships. */
  shipping(): ShippingStatus | null;
  /** What /metrics shows, given the shipping status the writer thread reports. */
  reading(shipping: ShippingStatus | null): PostgresReading;
  close(): Promise<void>;
}

/** Connects and catches up (or, when PostgreSQL cannot be reached, starts from the node's copy). */
export async function openCluster(o: ClusterOptions): Promise<PostgresCluster> {
  const { tenants: _, ...config } = o.config;
  const shared = await SharedObjects.open({
    url: o.url,
    database: o.database,
    vault: o.vault,
    clock: o.clock,
    scheduler: o.networkScheduler,
    log: o.log,
    config,
    configHash: o.configHash,
  });
  const pg: Pg = shared.client;
  const retention = new UsageRetention({
    deletes: pgRetentionDeletes(pg),
    clock: o.clock,
    log: o.log,
    retentionMs: o.retentionMs,
    scheduler: o.scheduler,
  });
  let shipper: UsageShipper | undefined;
  return {
    shared,
    usage: createPgUsageReads({ pg, clock: o.clock }),
    shipTo: { postgres: o.url, node: shared.node },
    attach(state) {
      shared.attach(state);
      retention.start();
    },
    shipFromHere() {
      shipper ??= new UsageShipper({
        sqlite: () => o.database.sqlite,
        pg,
        node: shared.node,
        log: o.log,
        // Retries wait in real time, like the timer that runs them.
        clock: systemClock,
        scheduler: timerScheduler,
      });
      shipper.start();
      const s = shipper;
      return () => s.shippedThrough;
    },
    shipping: () => shipper?.status() ?? null,
    reading(shipping) {
      const s = shared.status();
      return {
        reachable: s.reachable,
        version: s.version,
        waiting: s.waiting,
        configs: new Set(s.nodes.map((n) => n.configHash)).size,
        unshipped: shipping?.backlog ?? 0,
      };
    },
    problem(shipping) {
      const problems: string[] = [];
      const shared_ = shared.problem();
      if (shared_) problems.push(shared_);
      if (shipping?.failing && shared.isReachable) {
        problems.push(`Usage rows cannot be shipped to PostgreSQL (${shipping.error}).`);
      }
      if (shipping && shipping.backlog > 0 && (shipping.failing || !shared.isReachable)) {
        problems.push(`${shipping.backlog} usage rows wait in this node's database.`);
      }
      return problems.length ? problems.join(" ") : null;
    },
    async close() {
      await retention.stop();
      await shipper?.stop();
      await shared.close();
    },
  };
}
