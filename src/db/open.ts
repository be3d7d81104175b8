import { Database } from "bun:sqlite";
import { type BunSQLiteDatabase, drizzle } from "drizzle-orm/bun-sqlite";
import type { MigrationMeta } from "drizzle-orm/migrator";
import { migrations } from "./migrations.gen.ts";
import * as schema from "./schema.ts";

export type Db = BunSQLiteDatabase<typeof schema>;

export interface OpenDb {
  readonly path: string;
  /** The raw connection, for hot-path prepared statements. */
  sqlite: Database;
  db: Db;
  close(): void;
}

export interface OpenOptions {
  /** "normal" loses at most the last transactions on power loss (never corrupts, in WAL mode); "full" loses none. */
  synchronous?: "normal" | "full";
}

/** Opens (creating if needed) the database and brings its structure up to date. */
export function openDb(path: string, options: OpenOptions = {}): OpenDb {
  const sqlite = new Database(path, { create: true, strict: true });
  if (path !== ":memory:") sqlite.exec("PRAGMA journal_mode = WAL");
  sqlite.exec(`PRAGMA synchronous = ${options.synchronous === "full" ? "FULL" : "NORMAL"}`);
  sqlite.exec("PRAGMA foreign_keys = ON");
  sqlite.exec("PRAGMA busy_timeout = 5000");
  const db = drizzle({ client: sqlite, schema });
  migrate(db, migrations);
  return { path, sqlite, db, close: () => sqlite.close() };
}

/**
 * drizzle's own migrate() reads a folder, which does not exist inside a compiled binary. Its dialect
 * accepts the same migration list directly; dialect and session are marked internal in its types.
 */
function migrate(db: Db, list: MigrationMeta[]): void {
  const internal = db as unknown as {
    dialect: { migrate(m: MigrationMeta[], session: unknown, config: { migrationsFolder: string }): void };
    session: unknown;
  };
  internal.dialect.migrate(list, internal.session, { migrationsFolder: "embedded" });
}
