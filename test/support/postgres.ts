/**
 * A PostgreSQL server of the test's own, in a temporary directory: initdb, then the server on a unix
 * socket in that directory only (no TCP port at all, so nothing to collide with). As root (CI) the
 * server runs as the `postgres` user, since PostgreSQL refuses to run as root. Binaries are looked
 * up as Debian installs them (/usr/lib/postgresql/N/bin), then on PATH.
 */
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SQL } from "bun";

export interface TestPostgres {
  readonly dir: string;
  /** A URL for `database` that gatehouse's cluster.postgres accepts. */
  url(database?: string): string;
  /** Creates an empty database and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Runs a query (superuser) on `database`. */
  query<T = Record<string, unknown>>(text: string, database?: string): Promise<T[]>;
  /** Stops the server (fast shutdown: clients are disconnected), keeping its data. */
  stop(): Promise<void>;
  /** Starts it again on the same data and socket. */
  start(): Promise<void>;
  /** Stops it and removes its directory. */
  close(): Promise<void>;
}

function binDir(): string {
  const debian = "/usr/lib/postgresql";
  if (existsSync(debian)) {
    const versions = readdirSync(debian)
      .filter((v) => existsSync(join(debian, v, "bin", "initdb")))
      .sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return join(debian, versions[0], "bin");
  }
  const onPath = Bun.which("initdb");
  if (onPath) return join(onPath, "..");
  throw new Error(
    "PostgreSQL's server binaries (initdb, pg_ctl) were not found: install PostgreSQL " +
      "(Debian: apt-get install postgresql); the cluster tests start a server of their own",
  );
}

const asRoot = process.getuid?.() === 0;

async function run(cmd: string[]): Promise<void> {
  const proc = Bun.spawn(asRoot ? ["runuser", "-u", "postgres", "--", ...cmd] : cmd, {
    stdout: "pipe",
    stderr: "pipe",
    env: { PATH: process.env.PATH ?? "", LANG: "C", LC_ALL: "C" },
  });
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  if (code !== 0) throw new Error(`${cmd.join(" ")} exited ${code}:\n${out}${err}`);
}

export async function startPostgres(): Promise<TestPostgres> {
  const bin = binDir();
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-pg-"));
  if (asRoot) chownSync(dir, Number(Bun.spawnSync(["id", "-u", "postgres"]).stdout.toString().trim()), 0);
  const data = join(dir, "data");
  await run([join(bin, "initdb"), "-D", data, "-U", "gatehouse", "--auth=trust", "-E", "UTF8", "--no-sync"]);
  // The port only names the socket file; listen_addresses='' opens no TCP port.
  const options = `-k ${dir} -c listen_addresses= -p 5432 -c fsync=off -c full_page_writes=off`;
  const pgCtl = (...args: string[]) =>
    run([join(bin, "pg_ctl"), "-D", data, "-l", join(dir, "log"), ...args]);
  const start = () => pgCtl("-w", "-o", options, "start");
  await start();

  const url = (database = "postgres") =>
    `postgres://gatehouse@localhost/${database}?host=${encodeURIComponent(dir)}`;
  const query = async <T>(text: string, database = "postgres"): Promise<T[]> => {
    const sql = new SQL(url(database), { max: 1 });
    try {
      return [...((await sql.unsafe(text)) as T[])];
    } finally {
      await sql.close();
    }
  };
  return {
    dir,
    url,
    query,
    async createDatabase(name) {
      await query(`CREATE DATABASE "${name}"`);
      return url(name);
    },
    stop: () => pgCtl("-w", "-m", "fast", "stop"),
    start,
    async close() {
      await pgCtl("-w", "-m", "immediate", "stop").catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
