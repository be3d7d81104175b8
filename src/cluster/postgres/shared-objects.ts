/**
 * Cluster mode's shared objects: API-made tenants and keys, stored credentials and the audit log of
 * their changes live in PostgreSQL; each node serves from its own copy (local-copy.ts) and follows
 * PostgreSQL's changes.
 *
 * - Following: a LISTEN on the changes channel pulls a change as soon as it commits; a version check
 *   every second pulls whatever a lost notification (or a dropped connection) missed.
 * - Changing: the control API's change runs as a trial on the node's copy (capture.ts), goes to
 *   PostgreSQL (publish.ts), and is then applied to the copy; the answer waits for all of it.
 * - PostgreSQL away: the node starts and keeps serving from its copy; changes are refused with 503
 *   until it answers again, and the node then catches up.
 * - Heartbeats (heartbeat.ts) say which config each node runs; /readyz reports disagreement.
 *
 * One thing happens at a time on a node (a pull, an apply, a change), in the order asked.
 */
import type { Database } from "bun:sqlite";
import type { SQL } from "bun";
import type { GatewayConfig } from "../../config/schema.ts";
import type { Db, OpenDb } from "../../db/open.ts";
import { buildSnapshot } from "../../gateway/build-snapshot.ts";
import type { GatewayState } from "../../gateway/state.ts";
import type { Clock } from "../../lib/clock.ts";
import type { Log } from "../../lib/log.ts";
import type { Cancel, Scheduler } from "../../lib/scheduler.ts";
import { StartupError } from "../../lib/startup-error.ts";
import type { Vault } from "../../vault/vault.ts";
import { trialRun } from "./capture.ts";
import {
  connectPg,
  describePgError,
  isUnreachable,
  listenClient,
  migratePg,
  type Pg,
  sqlState,
} from "./connect.ts";
import { SharedConflictError, SharedUnavailableError } from "./errors.ts";
import { beat, configDisagreement, leave, liveNodes, type NodeBeat, self } from "./heartbeat.ts";
import { uploadLocalObjects } from "./join.ts";
import { LocalCopy, type Rows } from "./local-copy.ts";
import { CHANGES_CHANNEL, publish } from "./publish.ts";
import { currentVersion, pullChanges } from "./pull.ts";

type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];

export interface SharedObjectsOptions {
  url: string;
  database: OpenDb;
  vault: Vault;
  clock: Clock;
  /** Real timers: the version check and heartbeats are network work, also in test mode. */
  scheduler: Scheduler;
  log: Log;
  /** The config before the gateway state exists (start-up); afterwards the state's. */
  config: Omit<GatewayConfig, "tenants">;
  configHash: string;
  /** Between version checks (and heartbeats); 1 s unless a test says otherwise. */
  checkEveryMs?: number;
}

export interface SharedStatus {
  reachable: boolean;
  /** When PostgreSQL stopped answering (epoch ms), and what it said. */
  since: number | null;
  error: string | null;
  /** The version of the shared objects this node serves. */
  version: number;
  nodes: readonly NodeBeat[];
  waiting: number;
}

const CHECK_EVERY_MS = 1_000;
const STILL_DOWN_EVERY_MS = 60_000;

export class SharedObjects {
  readonly node: string;
  private readonly local: LocalCopy;
  private readonly pg: Pg;
  private state: GatewayState | null = null;
  private config: Omit<GatewayConfig, "tenants">;
  private configHash: string;
  private clusterId: string | null = null;
  private reachable = false;
  private down: { since: number; error: string; reported: number } | null = null;
  private nodes: NodeBeat[] = [];
  /** Another process wrote this node's heartbeat since its last one: it runs on a copy of this database. */
  private twin: { host: string; pid: number } | null = null;
  private beaten = false;
  private queue: Promise<unknown> = Promise.resolve();
  private timer: Cancel | undefined;
  private ticking = false;
  /** Settles when the latest version check has ended; never rejects. */
  private ticked: Promise<void> = Promise.resolve();
  /** The LISTEN connection's client while it is up. */
  private listener: SQL | null = null;
  /** Set while this module swaps a snapshot in, so its own swaps do not retry waiting rows. */
  private swapping = false;
  private closed = false;

  private constructor(private readonly o: SharedObjectsOptions) {
    this.local = new LocalCopy(o.database, o.log);
    this.node = this.local.nodeId();
    this.pg = connectPg(o.url);
    this.config = o.config;
    this.configHash = o.configHash;
  }

  /**
   * Connects and catches up before the gateway builds its first snapshot. When PostgreSQL cannot be
   * reached the node starts from its copy and keeps trying (see attach).
   */
  static async open(o: SharedObjectsOptions): Promise<SharedObjects> {
    const shared = new SharedObjects(o);
    try {
      await shared.exclusive(() => shared.catchUp());
    } catch (err) {
      if (!isUnreachable(err)) {
        await shared.pg.close();
        if (sqlState(err) === undefined) throw err;
        // Reachable but refusing (a wrong password, a missing database or right): the config must change.
        throw new StartupError(
          `PostgreSQL (cluster.postgres) refused this node: ${describePgError(err)}; check the URL, its ` +
            "user, password and database, and that the user may create tables",
        );
      }
      shared.unreachable(err);
    }
    return shared;
  }

  /** The gateway state exists: objects that waited for the file's tenants go in, and following begins. */
  attach(state: GatewayState): void {
    this.state = state;
    this.config = state.config.config;
    this.configHash = state.config.hash;
    this.retryWaiting();
    let warned = false;
    state.onSwap(() => {
      this.config = state.config.config;
      this.configHash = state.config.hash;
      if (state.config.config.cluster?.postgres !== this.o.url && !warned) {
        warned = true;
        this.o.log("warn", "cluster.postgres changed; this node keeps its PostgreSQL until the next start");
      }
      // A reload may have declared what waiting objects need (a plan, a tenant).
      if (!this.swapping && this.local.waiting.size) void this.exclusive(async () => this.retryWaiting());
    });
    this.timer = this.o.scheduler.every(this.o.checkEveryMs ?? CHECK_EVERY_MS, () => this.tick());
    void this.tick();
  }

  /** The database copy is the node's SQLite; the trial runs there. */
  private get sqlite(): Database {
    return this.o.database.sqlite;
  }

  /**
   * Makes a control-API change: `change` runs as a trial on this node's copy, with `check` after it
   * (the snapshot build); what it did goes to PostgreSQL, then into the copy, then into the snapshot.
   */
  commit<T>(change: (tx: Tx) => T, check: (tx: Tx) => void): Promise<T> {
    return this.exclusive(async () => {
      if (!this.reachable) throw new SharedUnavailableError(this.describeDown());
      try {
        await this.catchUp();
      } catch (err) {
        if (!isUnreachable(err)) throw err;
        this.unreachable(err);
        throw new SharedUnavailableError(this.describeDown());
      }
      const base = this.local.version;
      const { result, changes } = trialRun(this.o.database.db, this.sqlite, (tx) => {
        const out = change(tx);
        check(tx);
        return out;
      });
      if (changes.changes.length === 0 && changes.audit.length === 0) return result;
      for (const c of changes.changes) {
        const w = this.local.waiting.get(`${c.kind}:${c.id}`);
        if (w) {
          throw new SharedConflictError(
            `This node does not serve the latest version of ${c.kind} "${c.id}" (${w.reason}); change it on a node that does.`,
          );
        }
      }
      let version: number;
      try {
        version = await publish(this.pg.db, changes, base, this.node);
      } catch (err) {
        if (err instanceof SharedUnavailableError) this.unreachable(err);
        throw err;
      }
      const rows: Rows = {
        // Another node's change between `base` and this one is not in the copy yet: the next pull brings it.
        version: version === base + 1 ? version : null,
        full: false,
        tenants: [],
        keys: [],
        credentials: [],
        tombstones: [],
        audit: changes.audit.map((a) => ({ ...a, id: 0, node: this.node })),
      };
      const values = new Map<string, string | undefined>();
      for (const c of changes.changes) {
        if (c.row === null) rows.tombstones.push({ kind: c.kind, id: c.id });
        else if (c.kind === "tenant") rows.tenants.push({ ...c.row, version });
        else if (c.kind === "key") rows.keys.push({ ...c.row, version });
        else {
          rows.credentials.push({ ...c.row, version });
          values.set(c.id, this.o.vault.value(c.id));
        }
      }
      this.applyAndSwap(rows, values, false);
      if (rows.version === null) void this.tickSoon();
      return result;
    });
  }

  /** The connection pool, which the usage reads share; closed by close(). */
  get client(): Pg {
    return this.pg;
  }

  /** Whether PostgreSQL answered last time it was asked. */
  get isReachable(): boolean {
    return this.reachable;
  }

  status(): SharedStatus {
    return {
      reachable: this.reachable,
      since: this.down?.since ?? null,
      error: this.down?.error ?? null,
      version: this.local.version,
      nodes: this.nodes,
      waiting: this.local.waiting.size,
    };
  }

  /** What /readyz says about cluster mode when something is off (still 200), else null. */
  problem(): string | null {
    const problems: string[] = [];
    if (!this.reachable) problems.push(this.describeDown());
    if (this.local.waiting.size) {
      const some = [...this.local.waiting.values()]
        .slice(0, 3)
        .map((w) => `${w.kind} "${w.id}" (${w.reason})`);
      const more = this.local.waiting.size - some.length;
      problems.push(
        `${this.local.waiting.size} shared object(s) wait for this node's config: ${some.join(", ")}` +
          `${more > 0 ? ` and ${more} more` : ""}.`,
      );
    }
    const disagreement = configDisagreement(this.nodes, this.node);
    if (disagreement) problems.push(disagreement);
    if (this.twin) {
      problems.push(
        `Another gatehouse process (${this.twin.host} pid ${this.twin.pid}) runs with this node's id: its ` +
          "database file is a copy of this one's. Give every node a database file of its own.",
      );
    }
    return problems.length ? problems.join(" ") : null;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.timer?.();
    // A check under way would write this node's heartbeat again after `leave` removed it, and the
    // others would count a stopped node for 15 s more: let it end first.
    await this.ticked;
    await this.queue.catch(() => {});
    const listener = this.listener;
    this.listener = null;
    await listener?.close({ timeout: 0 }).catch(() => {});
    try {
      if (this.reachable) await leave(this.pg.db, this.node);
    } catch {
      // Best effort: the heartbeat ages out on its own.
    }
    await this.pg.close();
  }

  private describeDown(): string {
    const since = this.down ? ` since ${new Date(this.down.since).toISOString()} (${this.down.error})` : "";
    return (
      `PostgreSQL cannot be reached${since}; this node serves its own copy of the shared objects ` +
      `(version ${this.local.version}) and keeps its usage rows until PostgreSQL answers again; ` +
      "control-API changes are refused meanwhile."
    );
  }

  /** Runs `fn` after everything asked before it: pulls, applies and changes never overlap. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => {});
    return run;
  }

  /** One version check and heartbeat; also reconnects and re-subscribes after an outage. */
  private tick(): Promise<void> {
    if (this.ticking || this.closed) return this.ticked;
    this.ticking = true;
    this.ticked = this.check();
    return this.ticked;
  }

  private async check(): Promise<void> {
    try {
      await this.exclusive(() => this.catchUp());
      const before = await beat(this.pg.db, {
        node: this.node,
        configHash: this.configHash,
        version: this.local.version,
      });
      // The first beat may find the row of this node's previous process; later ones only its own.
      if (this.beaten && before && (before.host !== self.host || before.pid !== self.pid) && !this.twin) {
        this.twin = before;
        this.o.log("error", "another gatehouse process runs with this node's id", {
          host: before.host,
          pid: before.pid,
          fix: "give every node a database file of its own (never a copy): usage rows of one would be lost",
        });
      }
      this.beaten = true;
      this.nodes = await liveNodes(this.pg.db);
      await this.listen();
      this.reachable = true;
      this.down = null;
    } catch (err) {
      if (this.closed) return;
      if (isUnreachable(err)) this.unreachable(err);
      else this.o.log("error", "cluster sync failed", { error: describePgError(err) });
    } finally {
      this.ticking = false;
    }
  }

  private tickSoon(): void {
    this.o.scheduler.after(0, () => this.tick());
  }

  /** Subscribes to the changes channel, unless subscribed; a dropped connection is replaced at the next check. */
  private async listen(): Promise<void> {
    if (this.listener || this.closed) return;
    const client = listenClient(this.o.url, () => {
      if (this.listener === client) this.listener = null;
    });
    this.listener = client;
    try {
      await client.listen(
        CHANGES_CHANNEL,
        (payload) => {
          if (Number(payload) > this.local.version) void this.exclusive(() => this.catchUp()).catch(() => {});
        },
        // Notifications sent before the subscription are not delivered: the pull finds their changes.
        () => void this.exclusive(() => this.catchUp()).catch(() => {}),
      );
    } catch (err) {
      if (this.listener === client) this.listener = null;
      await client.close({ timeout: 0 }).catch(() => {});
      throw err;
    }
  }

  /** Migrates and joins on first contact, then pulls what changed and applies it. Call exclusively. */
  private async catchUp(): Promise<void> {
    if (this.closed) return;
    if (this.clusterId === null) {
      const clusterId = await migratePg(this.pg);
      if (this.local.clusterId !== clusterId) {
        await uploadLocalObjects(this.pg.db, this.o.database, this.o.log);
        this.local.follow(clusterId);
      }
      this.clusterId = clusterId;
    }
    const since = this.local.version === 0 ? null : this.local.version;
    if (since !== null && (await currentVersion(this.pg.db)) <= since) return this.markReachable();
    const pulled = await pullChanges(this.pg.db, since, this.local.auditMark, this.node);
    this.markReachable();
    if (!pulled) return;
    const values = new Map<string, string | undefined>();
    for (const c of pulled.credentials) values.set(c.name, await this.o.vault.openShared(c));
    this.applyAndSwap(pulled, values, this.state !== null);
  }

  private retryWaiting(): void {
    if (this.local.waiting.size === 0) return;
    this.applyAndSwap(this.local.waitingRows(), new Map(), true);
  }

  /** Applies rows to the copy and, when anything changed, swaps in a snapshot built from it. */
  private applyAndSwap(rows: Rows, values: Map<string, string | undefined>, check: boolean): void {
    const state = this.state;
    const { changed, forget } = this.local.apply(rows, {
      config: this.config,
      vault: this.o.vault,
      values,
      ...(check && state
        ? { check: (tx) => void buildSnapshot(this.config, tx, state.snapshot.version + 1, this.o.vault) }
        : {}),
    });
    for (const name of forget) this.o.vault.forget(name);
    if (!changed || !state) return;
    this.swapping = true;
    try {
      state.rebuild();
    } finally {
      this.swapping = false;
    }
  }

  private markReachable(): void {
    if (!this.reachable && this.down) {
      this.o.log("info", "PostgreSQL answers again; this node caught up", { version: this.local.version });
    }
    this.reachable = true;
    this.down = null;
  }

  private unreachable(err: unknown): void {
    const now = this.o.clock.now();
    if (this.reachable || !this.down) {
      this.down = { since: now, error: describePgError(err), reported: now };
      this.o.log("warn", "PostgreSQL cannot be reached; this node serves its own copy", {
        error: this.down.error,
      });
    } else if (now - this.down.reported >= STILL_DOWN_EVERY_MS) {
      // Once a minute while it lasts, so a log search finds an outage that is still going on.
      this.down.reported = now;
      this.down.error = describePgError(err);
      this.o.log("warn", "PostgreSQL still cannot be reached; this node serves its own copy", {
        since: new Date(this.down.since).toISOString(),
        error: this.down.error,
        version: this.local.version,
      });
    }
    this.reachable = false;
    this.nodes = this.nodes.filter((n) => n.node === this.node);
  }
}
