/**
 * The connection to the shared PostgreSQL: Bun's built-in client (no driver to install) under
 * drizzle's driver for it, and the structure brought up to date from the migrations embedded in
 * the binary. Nodes starting together migrate one at a time (an advisory lock).
 */
import { SQL } from "bun";
import { type BunSQLDatabase, drizzle } from "drizzle-orm/bun-sql";
import type { MigrationMeta } from "drizzle-orm/migrator";
import { migrations } from "./migrations.gen.ts";
import * as schema from "./schema.ts";

export type PgDb = BunSQLDatabase<typeof schema>;

export interface Pg {
  readonly sql: SQL;
  readonly db: PgDb;
  close(): Promise<void>;
}

/** Any 64-bit number that no other user of the database is likely to lock. */
const MIGRATION_LOCK = 0x6761_7465_686f;

const clientOptions = {
  // A PostgreSQL that does not answer must not hold a control-API change (or start-up) for long.
  connectionTimeout: 5,
  connection: { application_name: "gatehouse", statement_timeout: 30_000 },
};

export function connectPg(url: string, options: { max?: number } = {}): Pg {
  const sql = new SQL(url, { ...clientOptions, max: options.max ?? 4, idleTimeout: 60 });
  return { sql, db: drizzle({ client: sql, schema }), close: () => sql.close({ timeout: 1 }) };
}

/**
 * A client of its own for LISTEN, closed for good when its connection drops (`onclose`): left open,
 * Bun's client would reconnect on its own and warn on stderr, outside gatehouse's log, at each
 * failed attempt. The caller makes a new one once PostgreSQL answers again.
 */
export function listenClient(url: string, onclose: () => void): SQL {
  const sql: SQL = new SQL(url, {
    ...clientOptions,
    max: 1,
    onclose: () => {
      onclose();
      void sql.close({ timeout: 0 }).catch(() => {});
    },
  });
  return sql;
}

/** Applies the migrations this build carries; returns the cluster's id (made by the first node). */
export async function migratePg(pg: Pg): Promise<string> {
  const reserved = await pg.sql.reserve();
  try {
    await reserved`SELECT pg_advisory_lock(${MIGRATION_LOCK})`;
    try {
      const db = drizzle({ client: reserved, schema });
      // drizzle's migrate() reads a folder, which a compiled binary does not have; its dialect takes
      // the embedded list directly (dialect and session are marked internal in its types).
      const internal = db as unknown as {
        dialect: { migrate(m: MigrationMeta[], session: unknown, config: object): Promise<void> };
        session: unknown;
      };
      await internal.dialect.migrate(migrations, internal.session, { migrationsFolder: "embedded" });
      await reserved`INSERT INTO cluster_state (id, cluster_id, version)
        VALUES (1, ${crypto.randomUUID()}, 0) ON CONFLICT (id) DO NOTHING`;
      const [row] = await reserved`SELECT cluster_id FROM cluster_state WHERE id = 1`;
      return (row as { cluster_id: string }).cluster_id;
    } finally {
      await reserved`SELECT pg_advisory_unlock(${MIGRATION_LOCK})`;
    }
  } finally {
    reserved.release();
  }
}

/** True for an error that says PostgreSQL could not be reached or went away (as opposed to a refusal). */
export function isUnreachable(err: unknown): boolean {
  const e = (err as { cause?: unknown })?.cause ?? err;
  const code = String((e as { code?: unknown })?.code ?? "");
  if (/^ERR_POSTGRES_(CONNECTION|.*TIMEOUT|SERVER_ERROR_CLOSED|UNEXPECTED)/.test(code)) return true;
  if (/^(ECONNREFUSED|ECONNRESET|ENOENT|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENETUNREACH)$/.test(code)) return true;
  // The server is shutting down or restarting (admin_shutdown, crash_shutdown, cannot_connect_now).
  const state = String((e as { errno?: unknown })?.errno ?? "");
  return /^57P0[1-3]$/.test(state) || /^08/.test(state);
}

/** The SQLSTATE of a PostgreSQL error (e.g. 23505 for a unique violation), or undefined. */
export function sqlState(err: unknown): string | undefined {
  const e = (err as { cause?: unknown })?.cause ?? err;
  const state = (e as { errno?: unknown })?.errno;
  return typeof state === "string" ? state : undefined;
}

/** A short description of a PostgreSQL error for logs and /readyz: never the URL (it may hold a password). */
export function describePgError(err: unknown): string {
  const e = ((err as { cause?: unknown })?.cause ?? err) as { code?: unknown; message?: unknown };
  const code = typeof e?.code === "string" ? e.code : "";
  const message = String(e?.message ?? err).replace(/postgres(ql)?:\/\/\S+/g, "postgres://…");
  return code ? `${code}: ${message}` : message;
}
