/**
 * The composition root: loads the config, opens and syncs the database, builds the snapshot, wires
 * the policy chain and starts both listeners. Everything stateful is created here and passed down.
 */
import type { Server } from "bun";
import type { AdminDeps, createAdminApp } from "./admin/app.ts";
import { weakTokenReason } from "./admin/auth.ts";
import { setClientIp } from "./admin/client-ip.ts";
import { MAX_ADMIN_BODY } from "./admin/guard.ts";
import { LastUsedTracker, sqliteLastUsedWriter } from "./admin/keys/last-used.ts";
import type { PostgresCluster } from "./cluster/postgres/index.ts";
import {
  connectRedis,
  type RedisConnection,
  redisSettings,
  type SharedCounters,
  startSharedCounters,
} from "./cluster/redis/index.ts";
import { isLoopback } from "./config/check-references.ts";
import { ConfigError } from "./config/errors.ts";
import type { Env } from "./config/interpolate.ts";
import { type LoadedConfig, loadConfigFile } from "./config/load.ts";
import type { GatewayConfig } from "./config/schema.ts";
import { parseDuration, parseSize } from "./config/units.ts";
import { startConfigWatch } from "./config/watch.ts";
import { type OpenDb, openDb } from "./db/open.ts";
import { lastSyncedHash } from "./db/sync.ts";
import { WriterThread } from "./db/writer-thread.ts";
import { withDebugHeader } from "./explain/debug-header.ts";
import { createDataPlane, serveDataPlane } from "./gateway/data-plane.ts";
import type { Forwarded } from "./gateway/proxy.ts";
import type { Snapshot } from "./gateway/snapshot.ts";
import { GatewayState } from "./gateway/state.ts";
import { upstreamClient } from "./gateway/upstream-clients.ts";
import { UpstreamFailureLog } from "./gateway/upstream-failure-log.ts";
import { RemoteKeySets } from "./identity/jwks-cache.ts";
import { TokenVerifier } from "./identity/tokens.ts";
import { type Clock, systemClock } from "./lib/clock.ts";
import { type DeadlineSource, Deadlines } from "./lib/deadlines.ts";
import { DEFAULT_ADMIN, DEFAULT_LISTEN, formatUrl, parseListen } from "./lib/listen-address.ts";
import { isLogLevel, jsonLog, LevelFilter, LOG_LEVELS, type Log, type LogLevel } from "./lib/log.ts";
import { progressLog, type ReportProgress } from "./lib/progress.ts";
import { type Cancel, type Scheduler, timerScheduler } from "./lib/scheduler.ts";
import { StartupError } from "./lib/startup-error.ts";
import { createMetrics } from "./metrics/index.ts";
import { KeyCache } from "./policies/auth/index.ts";
import {
  ConcurrencyGate,
  createLimitsPolicy,
  QuotaCounters,
  type QuotaStore,
  SlidingWindows,
  SqliteQuotaStore,
  startLimitsMaintenance,
} from "./policies/limits/index.ts";
import { VirtualTime } from "./testmode/virtual-time.ts";
import type { DataThreads } from "./threads/data-threads.ts";
import { AccessLog, openAccessSink } from "./usage/access-log.ts";
import { createUsageMetering, type UsageRow, usageSettings } from "./usage/index.ts";
import { type FoundKey, findMasterKey } from "./vault/master-key.ts";
import { checkMasterKeyBeforeOpening, Vault } from "./vault/vault.ts";

export interface GatewayOptions {
  configPath: string;
  /** Overrides `database` from the config. */
  db?: string;
  /** Override `server.listen` / `server.admin` / `server.adminToken`. */
  listen?: string;
  admin?: string;
  adminToken?: string;
  env?: Env;
  clock?: Clock;
  /** Runs every timer (flushes, sweeps, retries, upstream deadlines); defaults to real timers. */
  scheduler?: Scheduler;
  /**
   * Test mode: a frozen clock that only the control API's /clock moves (starting at `clockStart`,
   * epoch ms, default now), loopback listeners only, and every write on this thread so that moving
   * the clock runs the flushes that fall due. Overrides `clock` and `scheduler`.
   */
  testMode?: { clockStart?: number };
  /** Reload when the config file changes (default true). */
  watchConfig?: boolean;
  /** Hears every request just before it goes upstream (the scenario runner records them). */
  onForward?: (forwarded: Forwarded) => void;
  fetch?: typeof fetch;
  /**
   * Runs the upstream deadlines; by default one list per timeout value on `scheduler`. The benchmark
   * injects a timer per deadline to measure what the lists save.
   */
  deadlines?: DeadlineSource;
  /** Where log lines go; gatehouse applies the log level (log.level, GATEHOUSE_LOG_LEVEL) before it. */
  log?: Log;
}

export interface RunningGateway {
  readonly dataUrl: string;
  readonly adminUrl: string;
  /** The tenant portal's address (server.portalUrl, else the bound one); null without server.portal. */
  readonly portalUrl: string | null;
  readonly state: GatewayState;
  /** Test mode's clock, which moves only when told to; null otherwise. */
  readonly testClock: VirtualTime | null;
  /** The gateway's log, with its level applied. */
  readonly log: Log;
  /** What the start-up line reports besides the addresses. */
  readonly summary: StartupSummary;
  /** A cluster's shared counters in Redis (`cluster.redis`); null on one node. */
  readonly sharedCounters: SharedCounters | null;
  /** The data-plane threads (server.threads > 1); null on one thread. */
  readonly threads: DataThreads | null;
  /**
   * Settles if the gateway cannot go on (a data-plane thread failed), with why; `serve` then stops
   * it and exits. Never settles on one thread.
   */
  readonly fatal: Promise<string>;
  /** Waits for in-flight requests (up to the drain timeout), flushes state and closes the database. */
  stop(): Promise<void>;
}

export { StartupError };
export interface StartupSummary {
  /** The config file, as given. */
  config: string;
  /** The database file, or ":memory:". */
  database: string;
  tenants: number;
  keys: number;
  routes: number;
  upstreams: number;
}

const DEFAULT_MAX_BODY = 10 * 1024 * 1024;

/**
 * Starts the gateway on a database whose vault holds nothing to decrypt (an in-memory one, say):
 * WebCrypto decrypts asynchronously, so `serve` starts through startGatewayUnlocked instead.
 */
export function startGateway(options: GatewayOptions): RunningGateway {
  const opened = openGateway(options);
  if (opened.vault.locked) {
    opened.database.close();
    throw new StartupError("the database holds stored credentials: start with startGatewayUnlocked");
  }
  if ((opened.loaded.config.server?.threads ?? 1) > 1) {
    opened.database.close();
    throw new ConfigError([
      opened.loaded.issue(
        ["server", "threads"],
        "an in-process gateway (gatehouse test) serves on one thread: its clock and requests are this thread's",
        "remove server.threads (or set it to 1) for this config, or test a running gatehouse with --target",
      ),
    ]);
  }
  if (opened.loaded.config.cluster?.postgres) {
    opened.database.close();
    // serve starts through startGatewayUnlocked; this is the in-process gateway of `gatehouse test`.
    throw new StartupError(
      "cluster.postgres: an in-process gateway runs on its own; remove cluster: from this config, or " +
        "test a running node with --target",
    );
  }
  return runGateway(options, opened);
}

/**
 * Decrypts the stored credentials into memory and, in cluster mode, catches up with PostgreSQL (or
 * starts from this node's copy when it cannot be reached) and connects to Redis, so that limits are
 * shared from the first request; then starts as startGateway does.
 */
export async function startGatewayUnlocked(options: GatewayOptions): Promise<RunningGateway> {
  const opened = openGateway(options);
  try {
    await opened.vault.unlock(opened.database.db, opened.log);
    const url = opened.loaded.config.cluster?.postgres;
    if (url) {
      const { openCluster } = await import("./cluster/postgres/index.ts");
      opened.cluster = await openCluster({
        url,
        database: opened.database,
        vault: opened.vault,
        clock: opened.clock,
        scheduler: opened.scheduler,
        // Network work: test mode's clock stands still, so it runs on real timers there.
        networkScheduler: opened.testClock ? timerScheduler : opened.scheduler,
        log: opened.log,
        config: opened.loaded.config,
        configHash: opened.loaded.hash,
        retentionMs: usageSettings(opened.loaded.config.usage).retentionMs,
      });
    }
  } catch (err) {
    opened.database.close();
    throw err;
  }
  const redis = redisSettings(opened.loaded.config.cluster);
  if (redis) opened.redis = await connectRedis(redis, realTime(opened.testClock, opened.scheduler));
  if ((opened.loaded.config.server?.threads ?? 1) > 1)
    opened.threads = await import("./threads/data-threads.ts");
  let running: RunningGateway & { ready: Promise<void> };
  try {
    running = runGateway(options, opened);
  } catch (err) {
    // runGateway has closed the database and PostgreSQL; the Redis connection was opened here.
    opened.redis?.close();
    throw err;
  }
  try {
    await running.ready;
  } catch (err) {
    await running.stop();
    throw err;
  }
  return running;
}

/** Network deadlines run in real time, also in test mode, whose frozen clock would never end them. */
const realTime = (testClock: VirtualTime | null, scheduler: Scheduler) =>
  testClock ? timerScheduler : scheduler;

interface OpenedGateway {
  log: Log;
  levels: LevelFilter;
  /** GATEHOUSE_LOG_LEVEL, which overrides log.level. */
  envLevel: LogLevel | undefined;
  progress: ReportProgress;
  testClock: VirtualTime | null;
  clock: Clock;
  scheduler: Scheduler;
  env: Env;
  loaded: LoadedConfig;
  database: OpenDb;
  vault: Vault;
  /** Cluster mode's PostgreSQL half, connected (or trying to). */
  cluster?: PostgresCluster;
  /** Opened before listening (serve), when the config has cluster.redis. */
  redis?: RedisConnection;
  /** server.threads > 1: the data-plane threads' module, loaded only then. */
  threads?: typeof import("./threads/data-threads.ts");
}

/** The config, the database and the vault, checked; nothing written yet, nothing listening. */
function openGateway(options: GatewayOptions): OpenedGateway {
  const env = options.env ?? process.env;
  const envLevel = logLevelFromEnv(env);
  const levels = new LevelFilter(options.log ?? jsonLog, envLevel ?? "info");
  const log = levels.log;
  const testClock = options.testMode
    ? new VirtualTime(options.testMode.clockStart ?? Date.now(), (err) =>
        log("error", "timer task failed", { error: String(err) }),
      )
    : null;
  const clock: Clock = testClock ?? options.clock ?? systemClock;
  const scheduler: Scheduler = testClock ?? options.scheduler ?? timerScheduler;
  const progress = progressLog(clock, log);
  const dbPathOf = (c: GatewayConfig) => options.db ?? c.database ?? "./gatehouse.db";
  // Read once: both parses of one file name the same key.
  let found: FoundKey | null | undefined;
  const masterKey = (c: GatewayConfig) => {
    if (found === undefined) found = findMasterKey(env, c);
    return found;
  };
  const openFor = (c: GatewayConfig) => {
    // A wrong master key stops start-up here, before anything could write to the database.
    checkMasterKeyBeforeOpening(dbPathOf(c), masterKey(c));
    return openDb(dbPathOf(c), { synchronous: c.usage?.synchronous });
  };

  // The database knows whether it already synced this exact config; if so the strict load is skipped.
  let opened: OpenDb | undefined;
  try {
    const loaded = loadConfigFile(options.configPath, env, {
      trust: ({ hash, config }) => {
        opened = openFor(config);
        return lastSyncedHash(opened) === hash;
      },
    });
    let database: OpenDb;
    if (opened?.path === dbPathOf(loaded.config)) database = opened;
    else {
      opened?.close();
      database = opened = openFor(loaded.config);
    }
    levels.level = envLevel ?? loaded.config.log?.level ?? "info";
    checkAdminExposure(loaded.config, options.admin, options.adminToken);
    if (testClock) checkTestModeListeners(loaded.config, options);
    checkThreads(loaded, testClock !== null, options);
    progress("config loaded");
    // Checked again on the connection the gateway uses (e.g. a database created meanwhile).
    const vault = Vault.open(database.db, masterKey(loaded.config));
    return { log, levels, envLevel, progress, testClock, clock, scheduler, env, loaded, database, vault };
  } catch (err) {
    opened?.close();
    throw err;
  }
}

function runGateway(
  options: GatewayOptions,
  opened: OpenedGateway,
): RunningGateway & { ready: Promise<void> } {
  const { log, levels, envLevel, progress, testClock, clock, scheduler, env, loaded, database, cluster } =
    opened;
  let state: GatewayState;
  let access: ReturnType<typeof openAccessSink>;
  try {
    state = new GatewayState(options.configPath, database, clock, env, loaded, progress, opened.vault);
    access = openAccessLog(loaded);
    cluster?.attach(state);
  } catch (err) {
    void cluster?.close();
    database.close();
    throw err;
  }
  const { config } = loaded;
  const server = config.server ?? {};
  const listenAt = options.listen ?? server.listen ?? DEFAULT_LISTEN;
  const adminAt = options.admin ?? server.admin ?? DEFAULT_ADMIN;
  const portalAt = server.portal;
  const startedAt = clock.now();
  const token = options.adminToken || server.adminToken || null;

  const maxBodyBytes = server.maxBodySize ? parseSize(server.maxBodySize) : DEFAULT_MAX_BODY;
  // With a database file, the writes traffic causes (usage rows, quota counters, last-used times)
  // run on a thread of their own, so the event loop never waits for SQLite's write lock.
  const writes =
    database.path === ":memory:" || testClock
      ? undefined
      : new WriterThread(database.path, usageSettings(config.usage), log, {
          // The writer thread put a removed database file back: this thread's connection follows.
          reopen: () => database.reopen(),
          ...(cluster ? { ship: cluster.shipTo } : {}),
        });
  const quotaStore = new SqliteQuotaStore(database.sqlite);
  const quotaWrites: QuotaStore = writes
    ? { load: (since) => quotaStore.load(since), save: writes.saveQuota }
    : quotaStore;
  // Counters outlive reloads: only the snapshot (and so the limit values) changes.
  const windows = new SlidingWindows();
  const quotas = new QuotaCounters(quotaWrites, clock);
  // With data-plane threads the counts live in shared memory, which loads them (src/threads).
  if (!opened.threads) quotas.load();
  const redis = redisSettings(config.cluster);
  const counters = redis
    ? startSharedCounters({
        settings: redis,
        clock,
        scheduler,
        realScheduler: realTime(testClock, scheduler),
        quotas,
        log,
        // Keys outlive what they count by a minute; test mode's clock may stand still for longer.
        keepMs: testClock ? 86_400_000 : 60_000,
        ...(opened.redis ? { connection: opened.redis } : {}),
      })
    : null;
  const limits = startLimitsMaintenance({
    clock,
    windows,
    quotas,
    scheduler,
    onError: (err) => log("error", "quota flush failed", { error: String(err) }),
  });
  const keyCache = new KeyCache();
  state.onSwap(() => keyCache.clear());
  // Output, not a decision: lines are written in real time, also while test mode's clock stands still.
  const accessLog = access ? new AccessLog({ ...access, scheduler: timerScheduler, log }) : null;
  const upstreamFailures = new UpstreamFailureLog({ log, scheduler });
  // Data-plane threads bring their own lines and usage rows; with an in-memory database (no writer
  // thread) they come to this thread, declared here and given their writers below.
  let recordRow: (row: UsageRow) => void = () => {};
  let recordUse: (keyId: string, at: number) => void = () => {};
  const rowSink =
    opened.threads && !writes
      ? new opened.threads.RowSink(
          (row) => recordRow(row),
          (keyId, at) => recordUse(keyId, at),
        )
      : null;
  // Validation keeps it within 1..255 s. It also bounds a request body that trickles in: Bun closes
  // such a connection about 2 s after it (0 would switch that off, which validation refuses).
  const idleSeconds = Math.ceil(parseDuration(server.idleTimeout ?? "30s") / 1000);
  const readings = {
    reloads: () => state.reloads,
    ...(accessLog ? { accessLog: () => accessLog.stats() } : {}),
    ...(counters ? { cluster: () => counters.health } : {}),
    ...(cluster ? { postgres: () => cluster.reading(writes?.shipping() ?? cluster.shipping()) } : {}),
  };
  // A data-plane thread that fails stops the gateway: `serve` waits on this.
  const { promise: fatalReason, resolve: fatal } = Promise.withResolvers<string>();
  // server.threads > 1: the data plane runs on threads of its own (src/threads); this thread keeps
  // the control API, the shared counters' directory and the quota writes.
  const threads = opened.threads
    ? new opened.threads.DataThreads(
        {
          count: server.threads ?? 1,
          state,
          database,
          clock,
          scheduler,
          log,
          level: () => envLevel ?? state.config.config.log?.level ?? "info",
          rowsChannel: () => (writes ? writes.connect() : rowSink!.connect()),
          rowsChannelGone: (id) => (writes ? writes.portGone(id) : rowSink!.gone(id)),
          quotaStore: quotaWrites,
          accessLog,
          maxBodyBytes,
          idleSeconds,
          env,
          onFatal: (reason) => {
            log("error", `${reason}; gatehouse stops (its supervisor may start it again)`);
            fatal(reason);
          },
        },
        readings,
      )
    : null;
  const metrics =
    threads?.metrics ??
    createMetrics({
      readings: {
        ...readings,
        keyCache: () => ({ entries: keyCache.size, hits: keyCache.hits, misses: keyCache.misses }),
      },
    });
  // What the quota routes, the dashboard and the portal show, and where they read and change it first.
  const shownQuotas = threads?.quotaCopy ?? quotas;
  const sharedQuotas = threads?.quotas ?? counters?.quotas;
  const usage = createUsageMetering({
    database,
    ...(writes ? { thread: writes } : {}),
    clock,
    scheduler,
    log,
    config: config.usage,
    // In test mode a report includes every request answered so far, whatever the virtual time.
    flushBeforeReads: testClock !== null,
    ...(accessLog ? { onRow: (row: UsageRow) => accessLog.record(row) } : {}),
    // Cluster mode without a writer thread: this thread ships the rows it writes.
    ...(cluster && !writes ? { shippedThrough: cluster.shipFromHere() } : {}),
  });
  const lastUsed = new LastUsedTracker(
    writes?.saveLastUsed ?? sqliteLastUsedWriter(database.sqlite),
    (err) => log("error", "last-used write failed", { error: String(err) }),
    undefined,
    scheduler,
  );
  lastUsed.start();
  recordRow = usage.record;
  recordUse = lastUsed.record;
  // While the store refuses writes, control-API writes and reloads wait: on the event loop they would
  // stall traffic for the busy timeout, or land in a removed file.
  const store = {
    status: () => usage.status(),
    writable: () => (writes ? writes.writable() : usage.status().healthy),
  };
  let draining = false;
  const tokens = new TokenVerifier(
    new RemoteKeySets({
      fetch: options.fetch ?? fetch,
      clock,
      // A JWKS fetch's deadline is network time: in test mode the frozen clock would never end it.
      scheduler: testClock ? timerScheduler : scheduler,
      log,
    }),
  );
  followLogSettings(state, levels, envLevel, config.log?.access ?? "off", log);
  const monotonicNow = () => performance.now();
  // Timers of requests in flight: in test mode on its clock, kept so the runner can tell them apart.
  const requestScheduler = testClock?.requests ?? scheduler;
  const deadlines =
    options.deadlines ??
    new Deadlines({
      scheduler: requestScheduler,
      // The deadlines' time must be the scheduler's: a virtual or injected one brings its clock.
      now: testClock || options.scheduler ? () => clock.now() : monotonicNow,
      exact: testClock !== null,
    });
  const upstreams = upstreamClient({
    fetch: options.fetch,
    env,
    deadlines,
    housekeeping: timerScheduler,
    now: monotonicNow,
  });
  followClusterSettings(state, log);
  // Named, because explain judges requests with these very objects (with data-plane threads, this
  // thread only explains; the threads serve).
  const { handle: gateway, policies } = createDataPlane({
    clock,
    scheduler: requestScheduler,
    snapshot: () => state.snapshot,
    client: upstreams,
    deadlines,
    now: monotonicNow,
    maxBodyBytes,
    tokens,
    keyCache,
    onKeyUse: lastUsed.record,
    limits:
      threads?.limits ??
      counters?.policy ??
      createLimitsPolicy({ clock, windows, quotas, concurrency: new ConcurrencyGate() }),
    metrics,
    recordUsage: usage.observe,
    upstreamFailures,
    log,
    proxy: {
      ...(testClock ? { waits: testClock } : {}),
      ...(options.onForward ? { onForward: options.onForward } : {}),
    },
  });
  const handle = testClock ? withDebugHeader(gateway, () => state.snapshot, clock, policies) : gateway;

  const servers: Server<undefined>[] = [];
  let portalUrl: string | null = null;
  let dataUrl = "";
  let ready = Promise.resolve();
  const dataBinding = { what: "data plane", at: listenAt, flag: "--listen", key: "server.listen" };
  let binding = dataBinding;
  try {
    const data = parseListen(listenAt);
    if (threads) {
      // Every thread serves the first snapshot before any binds (startGatewayUnlocked waits).
      ready = (async () => {
        await threads.start();
        try {
          const bound = await threads.listen(data.hostname, data.port);
          dataUrl = formatUrl(bound.hostname, bound.port);
        } catch (err) {
          throw listenError(err, dataBinding);
        }
      })();
    } else {
      const dataServer = serveDataPlane({
        hostname: data.hostname,
        port: data.port,
        reusePort: false,
        idleSeconds,
        maxBodyBytes,
        handle,
        log,
      });
      servers.push(dataServer);
      dataUrl = formatUrl(dataServer.hostname ?? "127.0.0.1", dataServer.port ?? 0);
    }
    binding = { what: "control API", at: adminAt, flag: "--admin", key: "server.admin" };
    const admin = parseListen(adminAt);
    // /readyz names every shared store that is off: PostgreSQL's objects and usage, Redis's counters.
    const clusterProblems = (): string | null =>
      [cluster?.problem(writes?.shipping() ?? cluster.shipping()), counters?.health.describe()]
        .filter((p): p is string => typeof p === "string" && p !== "")
        .join("; ") || null;
    // Loaded and built on first use: the data plane never needs Elysia, the OpenAPI document or
    // prom-client, and loading them cost every start of the compiled binary about 7 ms.
    const adminDeps: AdminDeps = {
      token,
      hosts: server.adminHosts ?? [],
      state,
      database,
      clock,
      metrics,
      usage: cluster?.usage ?? usage.service,
      store,
      ...(cluster ? { shared: cluster.shared } : {}),
      ...(sharedQuotas ? { sharedQuotas } : {}),
      ...(cluster || counters ? { cluster: clusterProblems } : {}),
      ...(threads ? { gatherMetrics: () => threads.gatherMetrics() } : {}),
      draining: () => draining,
      log,
      explain: policies,
      quotas: shownQuotas,
      startedAt,
      ...(testClock ? { testClock } : {}),
    };
    let adminApp: Promise<ReturnType<typeof createAdminApp>> | undefined;
    servers.push(
      Bun.serve({
        hostname: admin.hostname,
        port: admin.port,
        reusePort: false,
        // Never Bun's developer error pages, whatever NODE_ENV says.
        development: false,
        maxRequestBodySize: MAX_ADMIN_BODY,
        fetch: async (req, srv) => {
          setClientIp(req, srv.requestIP(req)?.address);
          adminApp ??= import("./admin/app.ts").then((m) => m.createAdminApp(adminDeps));
          return (await adminApp).fetch(req);
        },
      }),
    );
    // The tenant portal (src/ui/portal): a listener of its own, so tenants reach it without reaching
    // the control API. Loaded on its first request, like the control API.
    if (portalAt) {
      binding = { what: "tenant portal", at: portalAt, flag: "server.portal", key: "server.portal" };
      const at = parseListen(portalAt);
      let portal: Promise<(request: Request) => Promise<Response>> | undefined;
      const portalServer = Bun.serve({
        hostname: at.hostname,
        port: at.port,
        reusePort: false,
        development: false,
        maxRequestBodySize: MAX_ADMIN_BODY,
        fetch: async (req) => {
          portal ??= import("./ui/portal/server.ts").then((m) =>
            m.createPortal({
              state,
              database,
              clock,
              usage: cluster?.usage ?? usage.service,
              ...(cluster ? { shared: cluster.shared } : {}),
              ...(sharedQuotas ? { sharedQuotas } : {}),
              quotas: shownQuotas,
              log,
              dataUrl,
            }),
          );
          return (await portal)(req);
        },
      });
      servers.push(portalServer);
      portalUrl = (
        server.portalUrl ?? formatUrl(portalServer.hostname ?? "127.0.0.1", portalServer.port ?? 0)
      ).replace(/\/+$/, "");
      adminDeps.portalUrl = () => portalUrl;
    }
  } catch (err) {
    for (const s of servers) s.stop(true);
    void threads?.stop(0);
    void counters?.stop();
    limits.stop();
    lastUsed.stop();
    upstreamFailures.close();
    upstreams.close();
    void accessLog?.close();
    void usage
      .close()
      .then(() => cluster?.close())
      .finally(() => database.close());
    throw listenError(err, binding);
  }
  let stopReloadRetry: Cancel | undefined;
  const reload = () => {
    if (!store.writable()) {
      if (!stopReloadRetry) {
        log("warn", "config change seen while the database refuses writes; it is applied once they recover");
        stopReloadRetry = scheduler.every(1_000, () => {
          if (!store.writable()) return;
          stopReloadRetry?.();
          stopReloadRetry = undefined;
          reload();
        });
      }
      return;
    }
    const result = state.reload();
    if (result.ok) log("info", "config reloaded", { version: result.version, changed: result.changed });
    else log("warn", "config reload refused; the running config keeps serving", { errors: result.errors });
  };
  const stopWatching =
    options.watchConfig === false ? () => {} : startConfigWatch(options.configPath, reload);
  const adminServer = servers[threads ? 0 : 1]!;
  const drainMs = parseDuration(server.drainTimeout ?? "30s");

  let stopping: Promise<void> | undefined;
  return {
    get dataUrl() {
      return dataUrl;
    },
    adminUrl: formatUrl(adminServer.hostname ?? "127.0.0.1", adminServer.port ?? 0),
    portalUrl,
    ready,
    fatal: fatalReason,
    threads,
    state,
    testClock,
    log,
    summary: startupSummary(options.configPath, database.path, state.snapshot),
    sharedCounters: counters,
    stop() {
      stopping ??= (async () => {
        draining = true;
        stopWatching();
        stopReloadRetry?.();
        // Data-plane threads drain on their own (up to drainMs), then hand over their rows.
        const threadsStopped = threads?.stop(drainMs);
        const drained = Promise.all(servers.map((s) => s.stop(false)));
        let timer: ReturnType<typeof setTimeout> | undefined;
        const timeout = new Promise<"timeout">((r) => {
          timer = setTimeout(() => r("timeout"), drainMs);
        });
        if ((await Promise.race([drained, timeout])) === "timeout") {
          log("warn", "drain timeout: closing remaining connections", { drainMs });
          await Promise.all(servers.map((s) => s.stop(true)));
        }
        clearTimeout(timer);
        await threadsStopped;
        await rowSink?.ended();
        await counters?.stop();
        // Everything in memory reaches the database before it closes: the final quota and
        // last-used writes are posted before usage.close() closes the writer thread.
        limits.stop();
        lastUsed.stop();
        upstreamFailures.close();
        upstreams.close();
        await accessLog?.close();
        const { written, lost } = await usage.close();
        if (lost > 0) log("warn", "usage rows lost at shutdown", { written, lost });
        await cluster?.close();
        database.close();
      })();
      return stopping;
    },
  };
}

/** The control API is never exposed beyond loopback without a token, nor with a sample one. */
function checkAdminExposure(
  config: GatewayConfig,
  adminOverride: string | undefined,
  tokenOverride: string | undefined,
): void {
  const adminAt = adminOverride ?? config.server?.admin ?? DEFAULT_ADMIN;
  const token = tokenOverride || config.server?.adminToken || null;
  if (token === null && !isLoopback(adminAt)) {
    throw new StartupError(
      `refusing to start: the control API would listen on ${adminAt} without a token; ` +
        "set GATEHOUSE_ADMIN_TOKEN or server.adminToken, or listen on 127.0.0.1",
    );
  }
  const weak = token === null ? null : weakTokenReason(token);
  if (weak) {
    const where = tokenOverride ? "GATEHOUSE_ADMIN_TOKEN" : "server.adminToken";
    throw new StartupError(`refusing to start: ${weak}; set ${where} to a long random value`);
  }
}

/**
 * Test mode answers to whoever can reach it by moving the clock of every tenant's limits and quotas;
 * it must never be reachable from another machine.
 */
function checkTestModeListeners(config: GatewayConfig, options: GatewayOptions): void {
  for (const [what, at] of [
    ["data plane", options.listen ?? config.server?.listen ?? DEFAULT_LISTEN],
    ["control API", options.admin ?? config.server?.admin ?? DEFAULT_ADMIN],
    ...(config.server?.portal ? [["tenant portal", config.server.portal] as const] : []),
  ] as const) {
    if (!isLoopback(at)) {
      throw new StartupError(
        `refusing to start in test mode: the ${what} would listen on ${at}; test mode listens on loopback only (e.g. 127.0.0.1:0)`,
      );
    }
  }
}

/**
 * Data-plane threads (server.threads > 1) serve on their own clock, timers and upstream client: test
 * mode's virtual clock and what a caller injects (fetch, onForward, clock, scheduler, deadlines) live
 * on this thread and cannot reach them.
 */
function checkThreads(loaded: LoadedConfig, testMode: boolean, options: GatewayOptions): void {
  if ((loaded.config.server?.threads ?? 1) === 1) return;
  if (testMode) {
    throw new ConfigError([
      loaded.issue(
        ["server", "threads"],
        "test mode serves on one thread: its clock, moved by POST /clock, is this thread's",
        "remove server.threads (or set it to 1) to run this config in test mode",
      ),
    ]);
  }
  if (options.fetch || options.onForward || options.clock || options.scheduler || options.deadlines) {
    throw new StartupError(
      "GatewayOptions.fetch, onForward, clock, scheduler and deadlines cannot reach data-plane threads; " +
        "start with server.threads: 1 to use them",
    );
  }
}

function listenError(err: unknown, on: { what: string; at: string; flag: string; key: string }): Error {
  const code = (err as { code?: string }).code;
  const text = String((err as Error).message ?? err);
  const another = `choose another address with ${on.flag} or ${on.key}`;
  const reason =
    code === "EADDRINUSE" || /in use/i.test(text)
      ? `the address is already in use (is another gatehouse running?); stop that process, or ${another}`
      : code === "EACCES"
        ? `permission denied (ports below 1024 need privileges); ${another}`
        : code === "EADDRNOTAVAIL"
          ? `no network interface of this machine has that address; ${another}, e.g. 127.0.0.1 or 0.0.0.0`
          : code === "EINVAL"
            ? `the host is not an address of this machine (nor a name that resolves to one); ${another}`
            : `${text}; ${another}`;
  return new StartupError(`cannot listen on ${on.at} for the ${on.what}: ${reason}`, "unavailable");
}

function logLevelFromEnv(env: Env): LogLevel | undefined {
  const value = env.GATEHOUSE_LOG_LEVEL;
  if (value === undefined || value === "") return undefined;
  if (isLogLevel(value)) return value;
  throw new StartupError(
    `GATEHOUSE_LOG_LEVEL="${value}" is not a log level; use one of ${LOG_LEVELS.join(", ")}`,
  );
}

/** Opens `log.access`; a destination that cannot be opened is an error located in the config. */
function openAccessLog(loaded: LoadedConfig): ReturnType<typeof openAccessSink> {
  try {
    return openAccessSink(loaded.config.log?.access ?? "off");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new ConfigError([
      loaded.issue(
        ["log", "access"],
        `cannot open the access log for appending (${code})`,
        "create its directory and make it writable, or choose another path (or stderr, stdout, off)",
      ),
    ]);
  }
}

/**
 * A reload applies log.level (unless GATEHOUSE_LOG_LEVEL overrides it); the access log's
 * destination is opened at start-up only, so a changed one is reported, not silently ignored.
 */
function followLogSettings(
  state: GatewayState,
  levels: LevelFilter,
  envLevel: LogLevel | undefined,
  accessAtStart: string,
  log: Log,
): void {
  let reported = accessAtStart;
  state.onSwap(() => {
    const settings = state.config.config.log;
    levels.level = envLevel ?? settings?.level ?? "info";
    const access = settings?.access ?? "off";
    if (access !== reported) {
      reported = access;
      log("warn", "log.access changed; the access log keeps its destination until the next start");
    }
  });
}

/** `cluster:` is read at start-up: a reload that changes it is reported, not silently ignored. */
function followClusterSettings(state: GatewayState, log: Log): void {
  let reported = JSON.stringify(state.config.config.cluster ?? null);
  state.onSwap(() => {
    const cluster = JSON.stringify(state.config.config.cluster ?? null);
    if (cluster === reported) return;
    reported = cluster;
    log("warn", "cluster settings changed; they take effect at the next start");
  });
}

function startupSummary(config: string, database: string, snapshot: Snapshot): StartupSummary {
  // A rotated key is listed under both its hashes during its grace period.
  const keys = new Set<string>();
  for (const k of snapshot.keysByHash.values()) keys.add(k.id);
  return {
    config,
    database,
    tenants: snapshot.tenants.size,
    keys: keys.size,
    routes: snapshot.routes.length,
    upstreams: snapshot.upstreams.size,
  };
}
