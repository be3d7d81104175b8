/**
 * The running configuration as the control API reports it, and reloads on request. A failed reload
 * keeps the running snapshot (GatewayState guarantees that) and is reported here and by GET /config.
 */
import type { ReloadResult } from "../../gateway/state.ts";
import { iso } from "../fields.ts";
import { AdminProblem } from "../problem.ts";
import type { AdminStore } from "../store.ts";

export class ConfigService {
  private loadedAt: number;
  private loadedConfig: unknown;

  constructor(private readonly store: AdminStore) {
    this.loadedAt = store.clock.now();
    this.loadedConfig = store.state.config;
    // Reloads from the file watcher do not pass through here; a new LoadedConfig marks each one.
    store.state.onSwap(() => {
      if (store.state.config !== this.loadedConfig) {
        this.loadedConfig = store.state.config;
        this.loadedAt = store.clock.now();
      }
    });
  }

  info() {
    const { state } = this.store;
    const failure = state.lastReloadError;
    return {
      version: state.snapshot.version,
      file: state.config.file,
      hash: state.config.hash,
      loadedAt: iso(this.loadedAt),
      lastReloadError: failure ? { at: iso(failure.at), errors: failure.errors } : null,
    };
  }

  async reload(actor: string): Promise<{ version: number; changed: boolean }> {
    const result: ReloadResult = this.store.state.reload();
    this.store.database.db.transaction((tx) =>
      this.store.audit.record(tx, {
        actor,
        action: result.ok ? "config.reload" : "config.reload_failed",
        objectType: "config",
        objectId: this.store.state.config.hash.slice(0, 12),
        after: result.ok ? { version: result.version, changed: result.changed } : { errors: result.errors },
      }),
    );
    if (!result.ok) {
      throw new AdminProblem(
        422,
        "config_invalid",
        `The config file was not loaded; version ${this.store.state.snapshot.version} keeps serving. ` +
          "Fix the errors listed and reload again.",
        { errors: result.errors },
      );
    }
    // Answered once the data plane serves it (every data-plane thread, with server.threads > 1).
    await this.store.state.served();
    return { version: result.version, changed: result.changed };
  }
}
