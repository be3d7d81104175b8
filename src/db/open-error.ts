/**
 * SQLite says "unable to open database file" for a directory, a missing directory and a missing
 * permission alike. This names which one it is, and what to do.
 */
import { accessSync, constants, type Stats, statSync } from "node:fs";
import { dirname, join } from "node:path";

export class DatabaseOpenError extends Error {
  constructor(
    readonly path: string,
    /** Why, and what to do. */
    readonly reason: string,
    options?: ErrorOptions,
  ) {
    super(`cannot open the database "${path}": ${reason}`, options);
    this.name = "DatabaseOpenError";
  }
}

const ANOTHER = "or choose another path (--db, GATEHOUSE_DB or database: in the config)";

/** The SQLite error `err`, raised opening `path`, explained. */
export function databaseOpenError(path: string, err: unknown): DatabaseOpenError {
  return new DatabaseOpenError(path, reasonFor(path, err), { cause: err });
}

function reasonFor(path: string, err: unknown): string {
  const code = (err as { code?: string }).code ?? "";
  const message = (err as Error).message ?? String(err);
  switch (code) {
    case "SQLITE_CANTOPEN":
      return cannotOpen(path) ?? `SQLite cannot open it (${message}); ${ANOTHER}`;
    case "SQLITE_READONLY":
    case "SQLITE_PERM":
      return (
        "it is read-only for this user (the file, or its directory, where SQLite keeps the -wal and -shm " +
        `files beside it); give write permission, ${ANOTHER}`
      );
    case "SQLITE_NOTADB":
      return `the file is not a SQLite database; ${ANOTHER} (gatehouse creates a missing one)`;
    case "SQLITE_CORRUPT":
      return `the database file is corrupt; restore it from a backup, ${ANOTHER}`;
    case "SQLITE_BUSY":
    case "SQLITE_LOCKED":
      return "another process kept it locked for more than 5 s; stop that process or try again";
    case "SQLITE_FULL":
      return "the disk is full; free some space";
    default:
      return `${message}; ${ANOTHER}`;
  }
}

function cannotOpen(path: string): string | undefined {
  const here = statOf(path);
  if (typeof here !== "string" && here.isDirectory()) {
    return `it is a directory; give a file path, such as ${join(path, "gatehouse.db")}`;
  }
  const dir = dirname(path);
  const parent = statOf(dir);
  if (parent === "ENOENT") return `the directory "${dir}" does not exist; create it, ${ANOTHER}`;
  if (typeof parent === "string") return `this user may not reach the directory "${dir}"; ${ANOTHER}`;
  if (!parent.isDirectory()) return `"${dir}" is not a directory; ${ANOTHER}`;
  if (typeof here !== "string" && !allowed(path, constants.R_OK | constants.W_OK)) {
    return `this user may not read and write it; fix its permissions, ${ANOTHER}`;
  }
  if (!allowed(dir, constants.W_OK | constants.X_OK)) {
    return `this user may not create files in "${dir}"; fix its permissions, ${ANOTHER}`;
  }
  return undefined;
}

/** The file's stats, or the error code that kept us from them. */
function statOf(path: string): Stats | string {
  try {
    return statSync(path);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? "unknown";
  }
}

function allowed(path: string, mode: number): boolean {
  try {
    accessSync(path, mode);
    return true;
  } catch {
    return false;
  }
}
