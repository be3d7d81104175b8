/**
 * Holds the snapshot the data plane reads and the config it came from. A reload re-reads the file,
 * syncs and builds a new snapshot, and swaps it in only if every step succeeded; a bad reload keeps
 * the running snapshot and remembers why it failed.
 */
import { ConfigError } from "../config/errors.ts";
import type { Env } from "../config/interpolate.ts";
import { type LoadedConfig, loadConfigFile } from "../config/load.ts";
import type { GatewayConfig } from "../config/schema.ts";
import type { OpenDb } from "../db/open.ts";
import { lastSyncedHash, syncConfig } from "../db/sync.ts";
import type { Clock } from "../lib/clock.ts";
import type { ReportProgress } from "../lib/progress.ts";
import { missingCredentials } from "../vault/references.ts";
import { Vault } from "../vault/vault.ts";
import { buildSnapshot, SnapshotError } from "./build-snapshot.ts";
import type { Snapshot } from "./snapshot.ts";

/**
 * What the running gateway keeps of a loaded config. After the sync, tenants and keys live in the
 * database and the parsed document (every node's position) is not needed again; keeping either
 * would hold every declared secret and several kilobytes per key for the life of the process.
 */
export interface ActiveConfig {
  readonly file: string;
  readonly hash: string;
  readonly config: Omit<GatewayConfig, "tenants">;
}

function active(loaded: LoadedConfig): ActiveConfig {
  const { tenants: _declaredInDatabase, ...config } = loaded.config;
  return { file: loaded.file, hash: loaded.hash, config };
}

export type ReloadResult = { ok: true; version: number; changed: boolean } | { ok: false; errors: string[] };

export interface ReloadFailure {
  at: number;
  errors: string[];
}

export class GatewayState {
  private snap: Snapshot;
  private cfg: ActiveConfig;
  private failure: ReloadFailure | null = null;
  private readonly listeners: ((s: Snapshot) => void)[] = [];
  /** Reloads of the file so far (from the watcher or the control API), by result, for /metrics. */
  readonly reloads = { ok: 0, refused: 0 };

  constructor(
    private readonly configPath: string,
    private readonly database: OpenDb,
    private readonly clock: Clock,
    private readonly env: Env,
    loaded: LoadedConfig,
    /** Hears how the first sync is getting on (a cold sync of many keys takes seconds). */
    progress?: ReportProgress,
    /** The upstream credentials snapshots inject; without a vault, configs may not refer to any. */
    readonly vault: Vault = Vault.empty(),
  ) {
    this.snap = this.syncAndBuild(loaded, 1, progress).snapshot;
    this.cfg = active(loaded);
  }

  /** Syncs and builds inside one transaction: a config that cannot serve the database's tenants writes nothing. */
  private syncAndBuild(
    loaded: LoadedConfig,
    version: number,
    progress?: ReportProgress,
  ): { snapshot: Snapshot; changed: boolean } {
    const missing = missingCredentials(loaded, (name) => this.vault.has(name));
    if (missing.length) throw new ConfigError(missing);
    let snapshot: Snapshot | undefined;
    const { changed } = syncConfig(
      this.database,
      loaded,
      this.clock,
      (tx) => {
        progress?.("building the snapshot");
        snapshot = buildSnapshot(loaded.config, tx, version, this.vault);
      },
      progress,
    );
    return { snapshot: snapshot!, changed };
  }

  get snapshot(): Snapshot {
    return this.snap;
  }

  get config(): ActiveConfig {
    return this.cfg;
  }

  get lastReloadError(): ReloadFailure | null {
    return this.failure;
  }

  /**
   * The config in force, read back from its file to locate declarations (explain's file:line), or
   * null once the file no longer holds it. Not kept between calls: it holds every declared secret.
   */
  rereadInForce(): LoadedConfig | null {
    try {
      const loaded = loadConfigFile(this.configPath, this.env, {
        trust: ({ hash }) => hash === this.cfg.hash,
      });
      return loaded.hash === this.cfg.hash ? loaded : null;
    } catch {
      return null;
    }
  }

  /** Runs after every swap, e.g. to drop state of deleted keys. */
  onSwap(fn: (s: Snapshot) => void): void {
    this.listeners.push(fn);
  }

  /**
   * Resolves once the data plane serves the current snapshot: at once on one thread, where the swap
   * is the change; with data-plane threads, once every one of them does (threads/data-threads.ts).
   * The control API answers a change only then.
   */
  served(): Promise<void> {
    return this.servedWhen();
  }

  /** Who knows when the data plane serves the current snapshot (set by the data-plane threads). */
  servedBy(fn: () => Promise<void>): void {
    this.servedWhen = fn;
  }

  private servedWhen: () => Promise<void> = () => Promise.resolve();

  /** Rebuilds from the current config, database and vault, after the control API changed any of them. */
  rebuild(): Snapshot {
    this.swap(buildSnapshot(this.cfg.config, this.database.db, this.snap.version + 1, this.vault));
    return this.snap;
  }

  /** Re-reads the config file. The running snapshot keeps serving unless everything succeeds. */
  reload(): ReloadResult {
    let loaded: LoadedConfig;
    try {
      loaded = loadConfigFile(this.configPath, this.env, {
        trust: ({ hash }) => lastSyncedHash(this.database) === hash,
      });
      const next = this.syncAndBuild(loaded, this.snap.version + 1);
      this.cfg = active(loaded);
      this.failure = null;
      this.swap(next.snapshot);
      this.reloads.ok++;
      return { ok: true, version: next.snapshot.version, changed: next.changed };
    } catch (err) {
      const errors =
        err instanceof ConfigError
          ? err.issues.map((i) => `${i.file}:${i.line}:${i.col} ${i.path ? `${i.path}: ` : ""}${i.message}`)
          : err instanceof SnapshotError
            ? [err.message]
            : [String((err as Error)?.message ?? err)];
      this.failure = { at: this.clock.now(), errors };
      this.reloads.refused++;
      return { ok: false, errors };
    }
  }

  private swap(next: Snapshot): void {
    this.snap = next;
    for (const fn of this.listeners) fn(next);
  }
}
