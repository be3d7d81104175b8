/**
 * The main thread's side of server.threads > 1: starts the data-plane threads (worker.ts), gives
 * every one the snapshot and publishes it for all at once, owns the counters' directory and writes
 * their quota counts, answers the control API from shared memory, gathers metrics, and stops them.
 *
 * Every swap of GatewayState (a reload, a control-API change) is sent to every thread, which builds
 * the snapshot from the same inputs (config, rows, credentials: plain data, where the snapshot holds
 * compiled patterns and functions no message can carry) and says so; publish.ts switches all of them
 * at one instant once all have, and GatewayState.served lets the control API answer after it.
 */

import type { Env } from "../config/interpolate.ts";
import { readSnapshotRows } from "../gateway/build-snapshot.ts";
import { serveDataPlane } from "../gateway/data-plane.ts";
import type { GatewayState } from "../gateway/state.ts";
import { proxyVariables } from "../gateway/upstream-clients.ts";
import type { Clock } from "../lib/clock.ts";
import type { Log, LogLevel } from "../lib/log.ts";
import type { Cancel, Scheduler } from "../lib/scheduler.ts";
import { StartupError } from "../lib/startup-error.ts";
import { workerUrl } from "../lib/worker-url.ts";
import type { Readings } from "../metrics/index.ts";
import { QuotaCounters } from "../policies/limits/quota-counters.ts";
import type { QuotaRow } from "../policies/limits/quota-store.ts";
import type { AccessLog } from "../usage/access-log.ts";
import { LateWork, sharedCounters } from "./counters.ts";
import { SlotDirectory } from "./directory.ts";
import { createThreadLimitsPolicy, type ThreadLimitsPolicy } from "./limits.ts";
import { createSharedMemory, type SharedMemory, SharedViews } from "./memory.ts";
import { MergedMetrics, type MetricsDump } from "./metrics.ts";
import type { FromWorker, SnapshotSource, ToWorker } from "./protocol.ts";
import { Publication } from "./publish.ts";
import { ThreadQuotas } from "./quota-admin.ts";
import { SlotCache } from "./slot-cache.ts";

export { RowSink } from "./rows.ts";

/** How often quota counts are written (the most a crash can lose) and idle slots taken back. */
const FLUSH_EVERY_MS = 1000;
const SWEEP_EVERY_MS = 60_000;
/** How long after its drain deadline a thread that has not said "stopped" counts as stuck. */
const STUCK_MS = 5_000;

export interface DataThreadsOptions {
  readonly count: number;
  readonly state: GatewayState;
  /** The main thread's connection: what the snapshot was built from is read back from it. */
  readonly database: { readonly db: Parameters<typeof readSnapshotRows>[0] };
  readonly clock: Clock;
  readonly scheduler: Scheduler;
  readonly log: Log;
  /** The log level in force with the current snapshot (the threads apply it too). */
  readonly level: () => LogLevel;
  /** A channel for one thread's usage rows and last-used times, and how to give it up if the thread dies. */
  readonly rowsChannel: () => { id: number; port: MessagePort };
  readonly rowsChannelGone: (id: number) => void;
  /** Where quota counts are read at start and written (the writer thread, or the database on this thread). */
  readonly quotaStore: {
    load(since: number): readonly QuotaRow[];
    save(rows: readonly QuotaRow[], now: number): void;
  };
  readonly accessLog: AccessLog | null;
  readonly maxBodyBytes: number;
  readonly idleSeconds: number;
  /** gatehouse's environment, of which the threads' upstream clients read the HTTP proxy variables. */
  readonly env: Env;
  /** A thread failed: the gateway must stop (see README, Performance: threads). */
  readonly onFatal: (reason: string) => void;
  /** Counter slots of each kind the shared memory can grow to (tests make it small). */
  readonly maxSlots?: number;
}

interface Thread {
  readonly index: number;
  readonly worker: Worker;
  readonly rowsId: number;
  alive: boolean;
  /** Answers it owes, by kind. */
  listening?: (m: Extract<FromWorker, { type: "listening" | "unlistened" }>) => void;
  stopped?: () => void;
}

export class DataThreads {
  readonly memory: SharedMemory;
  private readonly views: SharedViews;
  private readonly directory: SlotDirectory;
  private readonly threads: Thread[] = [];
  private readonly publication: Publication;
  private readonly metricsAsked = new Map<number, { dumps: (MetricsDump | null)[]; done: () => void }>();
  private nextAsk = 0;
  private stopping = false;
  /** Why the first thread that failed failed. */
  private failure: string | null = null;
  private readonly cancel: Cancel[] = [];
  /** The main thread's limits policy (explain), on the same shared counters. */
  readonly limits: ThreadLimitsPolicy;
  readonly quotas: ThreadQuotas;
  /** What QuotaService shows, a copy of shared memory's counts. */
  readonly quotaCopy: QuotaCounters;
  readonly metrics: MergedMetrics;

  constructor(
    private readonly o: DataThreadsOptions,
    readings: Readings,
  ) {
    this.memory = createSharedMemory(o.maxSlots);
    this.views = new SharedViews(this.memory);
    this.directory = new SlotDirectory(this.memory, this.views);
    this.directory.loadSeeds(o.quotaStore.load(SlotDirectory.seedsSince(o.clock.now())));
    this.publication = new Publication(o.count, (version) => Atomics.store(this.views.control, 0, version));
    const cache = new SlotCache(this.views, (wants) => this.directory.grant(wants, o.clock.now()));
    const late = new LateWork((err) => o.log("error", "a late count failed", { error: String(err) }));
    const counters = sharedCounters(cache, late);
    this.limits = createThreadLimitsPolicy({ clock: o.clock, cache, counters, late });
    this.quotaCopy = new QuotaCounters({ load: () => [], save: () => {} }, o.clock);
    this.quotas = new ThreadQuotas({
      cache,
      quotas: counters.quotas,
      copy: this.quotaCopy,
      clock: o.clock,
      flush: () => this.flushQuotas(),
    });
    this.metrics = new MergedMetrics({
      ...readings,
      keyCache: () => this.metrics.keyCache,
      threads: () => this.metrics.perThread,
    });
    for (let index = 0; index < o.count; index++) this.spawn(index);
    o.state.onSwap(() => this.publish());
    o.state.servedBy(() => this.served());
    this.cancel.push(
      o.scheduler.every(FLUSH_EVERY_MS, () => this.flushQuotas()),
      o.scheduler.every(SWEEP_EVERY_MS, () => {
        this.directory.sweep(o.clock.now());
        cache.prune();
      }),
    );
  }

  /** Gives every thread the current snapshot and resolves once they serve it. */
  async start(): Promise<void> {
    this.publish();
    await this.served();
    if (this.failure) throw new StartupError(this.failure);
  }

  /**
   * Binds every thread to `hostname:port` (one port, reusePort). The port is first bound by this
   * thread alone, without reusePort, and let go: that finds a free port for port 0, and an address
   * another process holds fails here, as it does on one thread (reusePort alone would share it with
   * any process of the same user that also asks for it).
   */
  async listen(hostname: string, port: number): Promise<{ hostname: string; port: number }> {
    const probe = serveDataPlane({
      hostname,
      port,
      reusePort: false,
      idleSeconds: this.o.idleSeconds,
      maxBodyBytes: this.o.maxBodyBytes,
      handle: async () => new Response(null, { status: 503 }),
      log: this.o.log,
    });
    const bound = probe.port ?? port;
    const boundHost = probe.hostname ?? hostname;
    probe.stop(true);
    for (const t of this.threads) {
      const answer = await new Promise<Extract<FromWorker, { type: "listening" | "unlistened" }>>(
        (resolve) => {
          t.listening = resolve;
          this.send(t, { type: "listen", hostname, port: bound });
        },
      );
      if (answer.type === "unlistened") {
        throw Object.assign(new Error(answer.message), answer.code ? { code: answer.code } : {});
      }
    }
    return { hostname: boundHost, port: bound };
  }

  /** Resolves once every thread serves the newest snapshot (at once when they already do). */
  served(): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return this.publication.served(this.o.state.snapshot.version);
  }

  /** Asks every thread for its counts and sums them into `metrics`. */
  async gatherMetrics(): Promise<void> {
    const live = this.threads.filter((t) => t.alive);
    if (live.length === 0) return;
    const id = this.nextAsk++;
    const dumps: (MetricsDump | null)[] = this.threads.map(() => null);
    await new Promise<void>((done) => {
      this.metricsAsked.set(id, { dumps, done });
      for (const t of live) this.send(t, { type: "metrics", id });
    });
    this.metricsAsked.delete(id);
    this.metrics.merge(dumps.filter((d): d is MetricsDump => d !== null));
  }

  /** Lets every thread drain (up to `drainMs`) and hand over its rows, then writes the last quota counts. */
  async stop(drainMs: number): Promise<void> {
    this.stopping = true;
    for (const c of this.cancel) c();
    this.publication.release();
    const live = this.threads.filter((t) => t.alive);
    const stopped = Promise.all(
      live.map(
        (t) =>
          new Promise<void>((resolve) => {
            t.stopped = resolve;
            this.send(t, { type: "stop", drainMs });
          }),
      ),
    );
    // Each thread ends its own drain at drainMs; one that does not answer a while after is stuck.
    let cancel: Cancel | undefined;
    const stuck = new Promise<"stuck">(
      (r) => (cancel = this.o.scheduler.after(drainMs + STUCK_MS, () => r("stuck"))),
    );
    if ((await Promise.race([stopped, stuck])) === "stuck") {
      for (const t of live.filter((t) => t.stopped !== undefined)) {
        this.o.log("error", `data-plane thread ${t.index + 1} did not stop; its last usage rows are lost`);
        this.o.rowsChannelGone(t.rowsId);
      }
    }
    cancel?.();
    for (const t of this.threads) {
      t.alive = false;
      t.worker.terminate();
    }
    await this.limits.settled();
    this.flushQuotas();
  }

  /** Slots in use, by kind (for tests and the memory benchmark). */
  get slots() {
    return this.directory.size;
  }

  /** Test seam: the thread's Worker (tests make one fail). */
  workerOf(index: number): Worker {
    return this.threads[index]!.worker;
  }

  private spawn(index: number): void {
    const worker = new Worker(workerUrl("threads/worker.ts"));
    const rows = this.o.rowsChannel();
    const t: Thread = { index, worker, rowsId: rows.id, alive: true };
    this.threads.push(t);
    worker.onmessage = (e: MessageEvent<FromWorker>) => this.receive(t, e.data);
    worker.onerror = (e) => this.failed(t, e.message || "an uncaught error");
    worker.addEventListener("close", () => {
      if (t.alive) this.failed(t, "it exited");
    });
    this.send(
      t,
      {
        type: "init",
        settings: {
          index,
          count: this.o.count,
          memory: this.memory,
          rows: rows.port,
          maxBodyBytes: this.o.maxBodyBytes,
          idleSeconds: this.o.idleSeconds,
          accessLog: this.o.accessLog !== null,
          proxyEnv: proxyVariables(this.o.env),
        },
      },
      [rows.port],
    );
  }

  private receive(t: Thread, m: FromWorker): void {
    switch (m.type) {
      case "log":
        this.o.log(m.level, m.msg, { thread: t.index + 1, ...m.fields });
        return;
      case "prepared":
        this.publication.prepared(t.index, m.version);
        return;
      case "unprepared":
        this.failed(t, `it could not build snapshot version ${m.version}: ${m.error}`);
        return;
      case "listening":
      case "unlistened":
        t.listening?.(m);
        t.listening = undefined;
        return;
      case "slots":
        try {
          this.send(t, {
            type: "slots",
            id: m.id,
            granted: this.directory.grant(m.wants, this.o.clock.now()),
          });
        } catch (err) {
          this.send(t, { type: "slots", id: m.id, error: String((err as Error)?.message ?? err) });
        }
        return;
      case "metrics": {
        const asked = this.metricsAsked.get(m.id);
        if (!asked) return;
        asked.dumps[t.index] = m.dump;
        if (this.threads.every((x, i) => !x.alive || asked.dumps[i] !== null)) asked.done();
        return;
      }
      case "access":
        this.o.accessLog?.relay(m.chunk, m.lines);
        return;
      case "stopped":
        t.stopped?.();
        t.stopped = undefined;
        return;
    }
  }

  /** Sends the current snapshot to every thread; `advance` publishes it once all have built it. */
  private publish(): void {
    const { state, database } = this.o;
    const snapshot = state.snapshot;
    // The swap happened just now, on this thread, from these very rows and values.
    const source: SnapshotSource = {
      version: snapshot.version,
      config: state.config.config,
      rows: readSnapshotRows(database.db),
      credentials: state.vault.readable(),
    };
    const level = this.o.level();
    for (const t of this.threads) if (t.alive) this.send(t, { type: "snapshot", source, level });
  }

  private failed(t: Thread, reason: string): void {
    if (!t.alive) return;
    t.alive = false;
    this.failure ??= `data-plane thread ${t.index + 1} failed: ${reason}`;
    this.o.rowsChannelGone(t.rowsId);
    t.listening?.({
      type: "unlistened",
      code: undefined,
      message: `data-plane thread ${t.index + 1}: ${reason}`,
    });
    t.stopped?.();
    t.stopped = undefined;
    for (const [, asked] of this.metricsAsked) {
      if (this.threads.every((x, i) => !x.alive || asked.dumps[i] !== null)) asked.done();
    }
    this.publication.gone(t.index);
    if (!this.stopping) this.o.onFatal(`data-plane thread ${t.index + 1} failed: ${reason}`);
  }

  private send(t: Thread, m: ToWorker, transfer: MessagePort[] = []): void {
    t.worker.postMessage(m, transfer);
  }

  /** Writes the quota counts that changed; a refused write keeps them for the next. */
  private flushQuotas(): void {
    const rows = this.directory.quotaRows();
    if (rows.length === 0) return;
    try {
      this.o.quotaStore.save(rows, this.o.clock.now());
    } catch (err) {
      this.directory.unwrittenRows(rows);
      this.o.log("error", "quota flush failed", { error: String(err) });
    }
  }
}
