import { constants, Database, SQLiteError } from "bun:sqlite";
import { type BunSQLiteDatabase, drizzle } from "drizzle-orm/bun-sqlite";
import type { MigrationMeta } from "drizzle-orm/migrator";
import { migrations } from "./migrations.gen.ts";
import { DatabaseOpenError, databaseOpenError } from "./open-error.ts";
import * as schema from "./schema.ts";

export type Db = BunSQLiteDatabase<typeof schema>;

export interface OpenDb {
  readonly path: string;
  /** The raw connection, for hot-path prepared statements. Read it when used: reopen() replaces it. */
  readonly sqlite: Database;
  readonly db: Db;
  /**
   * Opens the file now at `path` and closes the old connection, whose file was removed (the writer
   * thread put a copy back; see writer-worker.ts).
   */
  reopen(): void;
  close(): void;
}

export interface OpenOptions {
  /** "normal" loses at most the last transactions on power loss (never corrupts, in WAL mode); "full" loses none. */
  synchronous?: "normal" | "full";
}

/** Opens (creating if needed) the database and brings its structure up to date. */
export function openDb(path: string, options: OpenOptions = {}): OpenDb {
  let current = connect(path, options);
  return {
    path,
    get sqlite() {
      return current.sqlite;
    },
    get db() {
      return current.db;
    },
    reopen() {
      const old = current;
      current = connect(path, options);
      // SQLite skips the closing checkpoint of a moved file; persistent-WAL mode also keeps it from
      // deleting the -wal and -shm that now belong to the new file at the same path.
      old.sqlite.fileControl(constants.SQLITE_FCNTL_PERSIST_WAL, 1);
      old.sqlite.close();
    },
    close() {
      // Everything committed reaches the database file before this returns. SQLite defers closing a
      // connection while prepared statements live (the garbage collector finalizes them later), and
      // that deferred close would move the WAL into the file some time after shutdown; a copy of
      // the file taken meanwhile would miss the WAL's rows.
      if (path !== ":memory:") {
        try {
          current.sqlite.exec("PRAGMA wal_checkpoint(TRUNCATE)");
        } catch {
          // Busy or unwritable: the rows stay in the WAL, as safe as before; the next open replays it.
        }
      }
      current.sqlite.close();
    },
  };
}

function connect(path: string, options: OpenOptions): { sqlite: Database; db: Db } {
  let sqlite: Database | undefined;
  try {
    sqlite = new Database(path, { create: true, strict: true });
    if (path !== ":memory:") sqlite.exec("PRAGMA journal_mode = WAL");
    sqlite.exec(`PRAGMA synchronous = ${options.synchronous === "full" ? "FULL" : "NORMAL"}`);
    sqlite.exec("PRAGMA foreign_keys = ON");
    sqlite.exec("PRAGMA busy_timeout = 5000");
    const db = drizzle({ client: sqlite, schema });
    migrate(db, migrations);
    return { sqlite, db };
  } catch (err) {
    sqlite?.close();
    throw err instanceof SQLiteError ? databaseOpenError(path, err) : err;
  }
}

/**
 * Opens an existing database file for reading only: nothing is created, migrated or written (not
 * even the WAL mode). Refuses a database that an older gatehouse wrote and this one would migrate.
 */
export function openDbReadOnly(path: string): { sqlite: Database; db: Db; close(): void } {
  let sqlite: Database | undefined;
  try {
    sqlite = new Database(path, { readonly: true, strict: true });
    sqlite.exec("PRAGMA busy_timeout = 5000");
    const applied = sqlite
      .query("SELECT count(*) AS n FROM sqlite_master WHERE name = '__drizzle_migrations'")
      .get() as { n: number };
    const count = applied.n
      ? (sqlite.query("SELECT count(*) AS n FROM __drizzle_migrations").get() as { n: number }).n
      : 0;
    if (count < migrations.length) {
      throw new DatabaseOpenError(
        path,
        "an older gatehouse wrote it, and this one would first upgrade it; start gatehouse serve on it once, then try again",
      );
    }
    const db = drizzle({ client: sqlite, schema });
    const opened = sqlite;
    return { sqlite, db, close: () => opened.close() };
  } catch (err) {
    sqlite?.close();
    throw err instanceof SQLiteError ? databaseOpenError(path, err) : err;
  }
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
