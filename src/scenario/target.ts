/**
 * Where a scenario's steps go: a fresh gateway started in this process (test mode, in-memory
 * database, the scenario's config), or a gatehouse already running elsewhere (--target, --admin).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type RunningGateway, startGateway } from "../app.ts";
import type { Env } from "../config/interpolate.ts";
import type { Forwarded } from "../gateway/proxy.ts";
import type { Log } from "../lib/log.ts";
import type { VirtualTime } from "../testmode/virtual-time.ts";
import type { Observed } from "./match.ts";

export interface HttpRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | undefined;
}

export interface Target {
  readonly dataUrl: string;
  readonly adminUrl: string;
  /** The admin token to send, if any. */
  readonly adminToken: string | null;
  /** The clock of an in-process gateway; null for --target, whose clock is only reached over HTTP. */
  readonly clock: VirtualTime | null;
  /** What the upstream received for a request id: null if nothing, undefined if unknowable here. */
  forwarded(requestId: string | null): Observed["upstream"];
  /** Replaces the config file an in-process gateway reloads from; false for --target. */
  replaceConfig(text: string): boolean;
  close(): Promise<void>;
}

export function startInProcessTarget(o: {
  configText: string;
  env: Env;
  clockStart: number;
  log: Log;
}): Target {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-scenario-"));
  const configPath = join(dir, "gateway.yaml");
  writeFileSync(configPath, o.configText);
  const received = new Map<string, Forwarded>();
  let gw: RunningGateway;
  try {
    gw = startGateway({
      configPath,
      db: ":memory:",
      listen: "127.0.0.1:0",
      admin: "127.0.0.1:0",
      env: o.env,
      log: o.log,
      testMode: { clockStart: o.clockStart },
      // Steps reload explicitly; a watcher would reload again, later, on its own timing.
      watchConfig: false,
      onForward: (f) => received.set(f.requestId, f),
    });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    dataUrl: gw.dataUrl,
    adminUrl: gw.adminUrl,
    adminToken: gw.state.config.config.server?.adminToken || null,
    clock: gw.testClock,
    forwarded(requestId) {
      const f = requestId === null ? undefined : received.get(requestId);
      return f ? { method: f.method, pathAndQuery: f.pathAndQuery, headers: f.headers } : null;
    },
    replaceConfig(text) {
      writeFileSync(configPath, text);
      return true;
    },
    async close() {
      await gw.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function remoteTarget(dataUrl: string, adminUrl: string, adminToken: string | null): Target {
  return {
    dataUrl: dataUrl.replace(/\/+$/, ""),
    adminUrl: adminUrl.replace(/\/+$/, ""),
    adminToken,
    clock: null,
    forwarded: () => undefined,
    replaceConfig: () => false,
    close: async () => {},
  };
}
