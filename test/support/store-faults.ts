/**
 * A real gatehouse process on a database file, steady traffic through it, and what the tests of
 * store faults ask of both: usage rows counted in the file, readiness, metrics. Faults that need
 * root (mounts, file attributes) are set up here too; `mountsPermitted` says whether they can be.
 */
import { Database } from "bun:sqlite";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type GatehouseProcess, gatehouseCommand, startProcess } from "./process.ts";

export const KEY = "store-faults-key-0001";

export const CONFIG = `version: 1
upstreams: { echo: { mock: echo } }
plans:
  metered:
    quota: { limit: 100000000, period: day }
    rules: [{ allow: "* /**" }]
routes: [{ match: "* /**", upstream: echo }]
tenants:
  acme: { plan: metered, keys: [{ id: acme-1, secret: ${KEY} }] }
`;

/** Starts gatehouse on `dbPath` with a config of its own in `configDir`. */
export async function startOnDb(dbPath: string, configDir: string): Promise<GatehouseProcess> {
  const config = join(configDir, "gateway.yaml");
  writeFileSync(config, CONFIG);
  return startProcess(gatehouseCommand(), [
    "serve",
    "--config",
    config,
    "--db",
    dbPath,
    "--listen",
    "127.0.0.1:0",
    "--admin",
    "127.0.0.1:0",
  ]);
}

export async function stopProcess(gh: GatehouseProcess): Promise<number> {
  gh.proc.kill("SIGTERM");
  return gh.proc.exited;
}

/**
 * Requests sent `concurrency` at a time, each client pausing `pauseMs` between requests, until
 * stop(); every status is kept. The pause keeps a long fault's rows well within usage.bufferRows.
 */
export function startTraffic(dataUrl: string, concurrency = 4, pauseMs = 2) {
  const statuses: number[] = [];
  let running = true;
  const worker = async () => {
    while (running) {
      try {
        const res = await fetch(`${dataUrl}/v1/items`, { headers: { "x-api-key": KEY } });
        await res.arrayBuffer();
        statuses.push(res.status);
      } catch {
        statuses.push(0);
      }
      await Bun.sleep(pauseMs);
    }
  };
  const workers = Array.from({ length: concurrency }, worker);
  return {
    statuses,
    async stop(): Promise<number[]> {
      running = false;
      await Promise.all(workers);
      return statuses;
    },
  };
}

/** Usage rows in the file, read through a connection of the test's own; null when it cannot be read. */
export function countRows(dbPath: string): number | null {
  try {
    const db = new Database(dbPath, { readonly: true });
    try {
      return (db.query("SELECT count(*) AS n FROM usage").get() as { n: number }).n;
    } finally {
      db.close();
    }
  } catch {
    return null;
  }
}

export function query<T>(dbPath: string, sql: string): T {
  const db = new Database(dbPath, { readonly: true });
  try {
    return db.query(sql).get() as T;
  } finally {
    db.close();
  }
}

/** Polls `check` until it returns true; fails naming `what` after `timeoutMs` (generous: a loaded machine). */
export async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await Bun.sleep(100);
  }
}

/** GET /readyz: its status code, `ready` or `degraded` (or the problem's type), and the detail. */
export async function readyz(
  gh: GatehouseProcess,
): Promise<{ status: number; state: string; detail: string }> {
  const res = await fetch(`${gh.adminUrl}/readyz`);
  const body = (await res.json()) as { status?: unknown; type?: string; detail?: string };
  return {
    status: res.status,
    state: typeof body.status === "string" ? body.status : (body.type ?? ""),
    detail: body.detail ?? "",
  };
}

export async function metricsText(gh: GatehouseProcess): Promise<string> {
  return (await fetch(`${gh.adminUrl}/metrics`)).text();
}

/** Log lines (JSON on stderr) whose msg is `msg`. */
export function logLines(gh: GatehouseProcess, msg: string): Record<string, unknown>[] {
  return gh
    .stderr()
    .split("\n")
    .filter((l) => l.includes(`"msg":"${msg}"`))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

const sh = (...cmd: string[]) => Bun.spawnSync(cmd, { stderr: "pipe", stdout: "pipe" });

/** Runs a command that must succeed. */
export function run(...cmd: string[]): string {
  const r = sh(...cmd);
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")} failed: ${r.stderr.toString()}`);
  return r.stdout.toString();
}

/** Whether this process may mount filesystems (root, in a place that allows it): probed once. */
export const mountsPermitted: boolean = (() => {
  if (process.getuid?.() !== 0) return false;
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-mount-probe-"));
  try {
    if (sh("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", dir).exitCode !== 0) return false;
    sh("umount", dir);
    return true;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
})();

/** Whether a small ext4 image can be made and loop-mounted, and file attributes set (chattr). */
export const ext4Permitted: boolean =
  mountsPermitted && ["mkfs.ext4", "chattr", "losetup"].every((c) => Bun.which(c) !== null);

/** Mounts a tmpfs of `size` at a new directory; unmount() removes both. */
export function mountTmpfs(size: string): { dir: string; unmount(): void } {
  const dir = tempDir("gatehouse-tmpfs-");
  run("mount", "-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir);
  return {
    dir,
    unmount() {
      sh("umount", dir);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Mounts a fresh ext4 image of `size` at a new directory; unmount() removes the mount and image. */
export function mountExt4(size: string): { dir: string; unmount(): void } {
  const base = tempDir("gatehouse-ext4-");
  const image = join(base, "fs.img");
  const dir = join(base, "mnt");
  mkdirSync(dir);
  run("truncate", "-s", size, image);
  run("mkfs.ext4", "-q", "-F", image);
  run("mount", "-o", "loop", image, dir);
  return {
    dir,
    unmount() {
      sh("umount", dir);
      rmSync(base, { recursive: true, force: true });
    },
  };
}
