/**
 * A data-plane thread (server.threads > 1): the data plane of gateway/data-plane.ts on a listener
 * that shares its port with the other threads (reusePort), serving the snapshot the main thread
 * published and deciding limits on the counters all threads share (limits.ts).
 *
 * From the main thread: init; snapshot (build it, say "prepared"; serve it once the main thread
 * publishes its version); listen; answers to slot requests; metrics; stop. To the main thread: log
 * lines, slot requests, the access log's lines, the metrics asked for. Usage rows and last-used
 * times go to the rows port (the writer thread's, or the main thread's with an in-memory database),
 * then "end" when the thread stops.
 */
import type { Server } from "bun";
import { LastUsedTracker } from "../admin/keys/last-used.ts";
import { compileSnapshot } from "../gateway/build-snapshot.ts";
import { createDataPlane, serveDataPlane } from "../gateway/data-plane.ts";
import { upstreamClient } from "../gateway/upstream-clients.ts";
import { UpstreamFailureLog } from "../gateway/upstream-failure-log.ts";
import { RemoteKeySets } from "../identity/jwks-cache.ts";
import { TokenVerifier } from "../identity/tokens.ts";
import { systemClock } from "../lib/clock.ts";
import { Deadlines } from "../lib/deadlines.ts";
import { LevelFilter, type Log, type LogLevel } from "../lib/log.ts";
import { type Cancel, timerScheduler } from "../lib/scheduler.ts";
import { createMetrics } from "../metrics/index.ts";
import { KeyCache } from "../policies/auth/index.ts";
import { AccessLog } from "../usage/access-log.ts";
import { packRows } from "../usage/packed.ts";
import { rowObserver, type UsageRow } from "../usage/row.ts";
import { LateWork, sharedCounters } from "./counters.ts";
import { createThreadLimitsPolicy } from "./limits.ts";
import { SharedViews } from "./memory.ts";
import { dumpMetrics } from "./metrics.ts";
import {
  type FromWorker,
  type RowMessage,
  SlotAsks,
  type SnapshotSource,
  type ToWorker,
  type WorkerSettings,
} from "./protocol.ts";
import { PublishedSnapshots } from "./publish.ts";
import { SlotCache } from "./slot-cache.ts";

declare const self: Worker;
const post = (m: FromWorker) => self.postMessage(m);
const levels = new LevelFilter((level, msg, fields) => post({ type: "log", level, msg, fields }), "info");
const log: Log = levels.log;

/** Rows gather this long (or up to POST_ROWS) before one message carries them all. */
const POST_EVERY_MS = 10;
const POST_ROWS = 512;
/** How often slots the main thread took back are forgotten. */
const PRUNE_EVERY_MS = 60_000;

/** Usage rows, batched and posted to the rows port. */
class RowPost {
  private pending: UsageRow[] = [];
  private timer: Cancel | undefined;

  constructor(private readonly port: MessagePort) {}

  readonly record = (row: UsageRow): void => {
    this.pending.push(row);
    if (this.pending.length >= POST_ROWS) this.flush();
    else this.timer ??= timerScheduler.after(POST_EVERY_MS, this.flush);
  };

  readonly flush = (): void => {
    this.timer?.();
    this.timer = undefined;
    if (this.pending.length === 0) return;
    const rows = packRows(this.pending);
    this.pending = [];
    this.port.postMessage({ type: "rows", rows } satisfies RowMessage, [rows.numbers.buffer]);
  };
}

/** Access-log lines go to the main thread, which writes them whole to the one destination. */
const forwardingSink = {
  write(chunk: string): boolean {
    let lines = 0;
    for (let i = chunk.indexOf("\n"); i !== -1; i = chunk.indexOf("\n", i + 1)) lines++;
    post({ type: "access", chunk, lines });
    return true;
  },
  once: () => forwardingSink,
  on: () => forwardingSink,
};

function start(settings: WorkerSettings) {
  const clock = systemClock;
  const scheduler = timerScheduler;
  const views = new SharedViews(settings.memory);
  const asks = new SlotAsks(post);
  const cache = new SlotCache(views, asks.ask);
  const late = new LateWork((err) => log("error", "a late count failed", { error: String(err) }));
  const limits = createThreadLimitsPolicy({ clock, cache, counters: sharedCounters(cache, late), late });
  const stopPrune = scheduler.every(PRUNE_EVERY_MS, () => cache.prune());

  // The published version is read at the start of every request: a request keeps one snapshot.
  const snapshots = new PublishedSnapshots(() => Atomics.load(views.control, 0));

  const rows = new RowPost(settings.rows);
  const lastUsed = new LastUsedTracker(
    (batch) => settings.rows.postMessage({ type: "lastUsed", entries: [...batch] } satisfies RowMessage),
    (err) => log("error", "last-used write failed", { error: String(err) }),
    undefined,
    scheduler,
  );
  lastUsed.start();
  const accessLog = settings.accessLog ? new AccessLog({ sink: forwardingSink, scheduler, log }) : null;
  const metrics = createMetrics();
  const keyCache = new KeyCache();
  const upstreamFailures = new UpstreamFailureLog({ log, scheduler });
  const tokens = new TokenVerifier(new RemoteKeySets({ fetch, clock, scheduler, log }));
  // Each thread has an upstream client of its own, on its own event loop: none shares a thread.
  const monotonicNow = () => performance.now();
  const deadlines = new Deadlines({ scheduler, now: monotonicNow });
  const upstreams = upstreamClient({
    env: settings.proxyEnv,
    deadlines,
    housekeeping: scheduler,
    now: monotonicNow,
    sharedBy: settings.count,
  });
  const { handle } = createDataPlane({
    clock,
    scheduler,
    snapshot: () => snapshots.now(),
    client: upstreams,
    deadlines,
    now: monotonicNow,
    maxBodyBytes: settings.maxBodyBytes,
    tokens,
    keyCache,
    onKeyUse: lastUsed.record,
    limits,
    metrics,
    recordUsage: rowObserver(
      (row) => rows.record(row),
      accessLog ? (row) => accessLog.record(row) : undefined,
      log,
    ),
    upstreamFailures,
    log,
  });

  let server: Server<undefined> | undefined;

  return {
    prepare(source: SnapshotSource, level: LogLevel): void {
      levels.level = level;
      const credentials = new Map(source.credentials);
      snapshots.add(
        compileSnapshot(source.config, source.rows, source.version, { value: (n) => credentials.get(n) }),
      );
    },
    listen(hostname: string, port: number): number {
      server = serveDataPlane({
        hostname,
        port,
        reusePort: true,
        idleSeconds: settings.idleSeconds,
        maxBodyBytes: settings.maxBodyBytes,
        handle,
        log,
      });
      return server.port ?? port;
    },
    answer: (m: Extract<ToWorker, { type: "slots" }>) => asks.answer(m),
    metrics: () =>
      dumpMetrics(metrics, { entries: keyCache.size, hits: keyCache.hits, misses: keyCache.misses }),
    /** Lets requests in flight end (up to `drainMs`), then hands over everything they left. */
    async stop(drainMs: number): Promise<void> {
      if (server) {
        let cancel: Cancel | undefined;
        const timedOut = new Promise<"timeout">(
          (r) => (cancel = scheduler.after(drainMs, () => r("timeout"))),
        );
        if ((await Promise.race([server.stop(false), timedOut])) === "timeout") {
          log("warn", "drain timeout: closing remaining connections", { drainMs });
          await server.stop(true);
        }
        cancel?.();
      }
      stopPrune();
      await limits.settled();
      lastUsed.stop();
      upstreamFailures.close();
      upstreams.close();
      await accessLog?.close();
      rows.flush();
      settings.rows.postMessage({ type: "end" } satisfies RowMessage);
    },
  };
}

let thread: ReturnType<typeof start> | undefined;

self.onmessage = async (event: MessageEvent<ToWorker>) => {
  const m = event.data;
  switch (m.type) {
    case "init":
      thread = start(m.settings);
      return;
    case "snapshot":
      try {
        thread!.prepare(m.source, m.level);
        post({ type: "prepared", version: m.source.version });
      } catch (err) {
        post({
          type: "unprepared",
          version: m.source.version,
          error: String((err as Error)?.message ?? err),
        });
      }
      return;
    case "listen":
      try {
        post({ type: "listening", port: thread!.listen(m.hostname, m.port) });
      } catch (err) {
        post({ type: "unlistened", code: (err as { code?: string }).code, message: String(err) });
      }
      return;
    case "slots":
      thread!.answer(m);
      return;
    case "metrics":
      post({ type: "metrics", id: m.id, dump: thread!.metrics() });
      return;
    case "stop":
      await thread?.stop(m.drainMs);
      post({ type: "stopped" });
      return;
    default:
      // A message this thread does not know is a bug in the main thread: fail loudly.
      throw new Error(`data-plane thread: unknown message ${JSON.stringify((m as { type?: unknown }).type)}`);
  }
};
