/**
 * Ships this node's usage rows and rollups to PostgreSQL. Rows are written to the node's SQLite first,
 * exactly as on one node (the writer thread), so a row is committed, and never lost, before
 * PostgreSQL is involved; from there they are copied in id order, a batch per transaction, and the id
 * of the last one shipped is kept in SQLite. While PostgreSQL is away they wait in SQLite (retention
 * keeps them: see UsageRetention's shippedThrough) and go once it answers.
 *
 * Every step may be repeated without harm: rows are keyed in PostgreSQL by node and local id (a copy
 * of a row already there is skipped), and rollups are copied as this node's absolute totals, which
 * replace what an earlier copy wrote. A commit whose answer was lost is therefore simply shipped again.
 */
import type { Database } from "bun:sqlite";
import { sql } from "drizzle-orm";
import type { RollupDim } from "../../db/schema.ts";
import type { Clock } from "../../lib/clock.ts";
import type { Log } from "../../lib/log.ts";
import type { Cancel, Scheduler } from "../../lib/scheduler.ts";
import { rollupDeltas } from "../../usage/rollup.ts";
import type { UsageRow } from "../../usage/row.ts";
import type { StoredTotals } from "../../usage/totals.ts";
import { describePgError, type Pg } from "./connect.ts";
import * as pg from "./schema.ts";

export interface ShippingStatus {
  /** Usage rows in this node's database that PostgreSQL does not have yet (about). */
  backlog: number;
  /** The last attempt failed; rows wait in SQLite. */
  failing: boolean;
  error: string | null;
}

export interface ShipperOptions {
  /** Read when used: the writer thread replaces its connection if the file had to be recreated. */
  sqlite: () => Database;
  pg: Pg;
  /** This node's id in the cluster (LocalCopy.nodeId). */
  node: string;
  log: Log;
  clock: Clock;
  scheduler: Scheduler;
  /** Rows per PostgreSQL transaction. */
  batchRows?: number;
  everyMs?: number;
}

const EVERY_MS = 250;
const BATCH_ROWS = 5_000;
const MAX_BACKOFF_MS = 5_000;
/** Rows per INSERT: PostgreSQL takes at most 65535 parameters per statement. */
const CHUNK = 2_000;

type LocalRow = UsageRow & { id: number };
type LocalRollup = StoredTotals & {
  grain: number;
  dim: string;
  start: number;
  tenant_id: string;
  value: string;
};

export class UsageShipper {
  private cluster: string | undefined;
  private mark = 0;
  private timer: Cancel | undefined;
  private running: Promise<number> | undefined;
  private failures = 0;
  private retryAt = 0;
  private lastError: string | null = null;
  private stopped = false;
  private statements:
    | { sqlite: Database; rows: ReturnType<Database["prepare"]>; rollup: ReturnType<Database["prepare"]> }
    | undefined;

  constructor(private readonly o: ShipperOptions) {}

  start(): void {
    this.timer ??= this.o.scheduler.every(this.o.everyMs ?? EVERY_MS, () => {
      if (this.failures === 0 || this.o.clock.now() >= this.retryAt) void this.ship();
    });
  }

  /** The id of the last row PostgreSQL has; 0 until known (retention then keeps every row). */
  get shippedThrough(): number {
    return this.cluster === undefined ? 0 : this.mark;
  }

  status(): ShippingStatus {
    return { backlog: this.backlog(), failing: this.failures > 0, error: this.lastError };
  }

  /** Ships everything waiting, batch by batch; concurrent calls share one run. Never throws. */
  ship(): Promise<number> {
    this.running ??= this.shipAll().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** Stops the timer; ships what is left once more (what cannot go waits for the next start). */
  async stop(): Promise<void> {
    this.timer?.();
    this.timer = undefined;
    await this.running;
    await this.ship();
    this.stopped = true;
    const left = this.backlog();
    if (left > 0) {
      this.o.log("warn", "usage rows stay in this node's database until it starts again", { rows: left });
    }
  }

  private async shipAll(): Promise<number> {
    let shipped = 0;
    try {
      for (;;) {
        if (this.stopped) break;
        const n = await this.shipBatch();
        shipped += n;
        if (n < (this.o.batchRows ?? BATCH_ROWS)) break;
      }
      if (this.failures > 0) this.o.log("info", "usage rows reach PostgreSQL again", { shipped });
      this.failures = 0;
      this.lastError = null;
    } catch (err) {
      const error = describePgError(err);
      if (this.failures === 0) {
        this.o.log("warn", "usage rows cannot be shipped to PostgreSQL; they wait in this node's database", {
          error,
        });
      }
      this.failures++;
      this.lastError = error;
      this.retryAt =
        this.o.clock.now() + Math.min(MAX_BACKOFF_MS, (this.o.everyMs ?? EVERY_MS) * 2 ** this.failures);
    }
    return shipped;
  }

  private async shipBatch(): Promise<number> {
    if (this.cluster === undefined) {
      const [state] = await this.o.pg.db.select({ id: pg.clusterState.clusterId }).from(pg.clusterState);
      if (!state) throw new Error("the cluster's tables are not made yet");
      this.mark = Number(this.readMark(state.id) ?? 0);
      this.cluster = state.id;
    }
    const s = this.prepared();
    const rows = s.rows.all(this.mark, this.o.batchRows ?? BATCH_ROWS) as LocalRow[];
    if (rows.length === 0) return 0;
    const rollups: LocalRollup[] = [];
    for (const d of rollupDeltas(rows).deltas) {
      const r = s.rollup.get(d.grain, d.dim, d.start, d.tenant, d.value) as LocalRollup | null;
      if (r) rollups.push(r);
    }
    const node = this.o.node;
    await this.o.pg.db.transaction(async (tx) => {
      for (let i = 0; i < rows.length; i += CHUNK) {
        const values = rows.slice(i, i + CHUNK).map(({ id, ...r }) => ({ ...r, node, localId: id }));
        await tx
          .insert(pg.usage)
          .values(values)
          .onConflictDoNothing({ target: [pg.usage.node, pg.usage.localId] });
      }
      for (let i = 0; i < rollups.length; i += CHUNK) {
        const values = rollups.slice(i, i + CHUNK).map((r) => ({
          grain: r.grain,
          dim: r.dim as RollupDim,
          start: r.start,
          tenantId: r.tenant_id,
          value: r.value,
          requests: r.requests,
          errors: r.errors,
          cost: r.cost,
          bytesIn: r.bytes_in,
          bytesOut: r.bytes_out,
          upstreamCount: r.upstream_count,
          upstreamMs: r.upstream_ms,
          latencyMin: r.latency_min,
          latencyMax: r.latency_max,
          latencyHist: Buffer.from(r.latency_hist),
          node,
        }));
        await tx
          .insert(pg.usageRollup)
          .values(values)
          .onConflictDoUpdate({
            target: [
              pg.usageRollup.grain,
              pg.usageRollup.dim,
              pg.usageRollup.tenantId,
              pg.usageRollup.start,
              pg.usageRollup.value,
              pg.usageRollup.node,
            ],
            set: Object.fromEntries(MEASURES.map((m) => [m, sql.raw(`excluded.${pg.usageRollup[m].name}`)])),
          });
      }
    });
    this.mark = rows[rows.length - 1]!.id;
    this.writeMark(this.cluster, this.mark);
    return rows.length;
  }

  private prepared() {
    const sqlite = this.o.sqlite();
    if (this.statements?.sqlite !== sqlite) {
      this.statements = {
        sqlite,
        rows: sqlite.prepare(
          "SELECT id, ts, request_id AS requestId, tenant_id AS tenantId, key_id AS keyId, route, method, path, " +
            "status, outcome, cost, bytes_in AS bytesIn, bytes_out AS bytesOut, latency_ms AS latencyMs, " +
            "upstream_ms AS upstreamMs, would_refuse AS wouldRefuse FROM usage WHERE id > ? ORDER BY id LIMIT ?",
        ),
        rollup: sqlite.prepare(
          "SELECT * FROM usage_rollup WHERE grain = ? AND dim = ? AND start = ? AND tenant_id = ? AND value = ?",
        ),
      };
    }
    return this.statements;
  }

  private backlog(): number {
    try {
      const top = this.o.sqlite().query<{ top: number | null }, []>("SELECT max(id) AS top FROM usage").get();
      return Math.max(0, (top?.top ?? 0) - this.shippedThrough);
    } catch {
      return 0;
    }
  }

  /** The mark is per cluster: a node pointed at another PostgreSQL ships its rows there from the start. */
  private readMark(cluster: string): string | undefined {
    return this.o
      .sqlite()
      .query<{ value: string }, [string]>("SELECT value FROM meta WHERE key = ?")
      .get(`cluster_shipped:${cluster}`)?.value;
  }

  private writeMark(cluster: string, through: number): void {
    this.o
      .sqlite()
      .query(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      )
      .run(`cluster_shipped:${cluster}`, String(through));
  }
}

const MEASURES = [
  "requests",
  "errors",
  "cost",
  "bytesIn",
  "bytesOut",
  "upstreamCount",
  "upstreamMs",
  "latencyMin",
  "latencyMax",
  "latencyHist",
] as const;
