/**
 * Watches the config file for changes and calls `onChange` once per burst of writes. It watches the
 * file itself, not its directory: the database usually sits beside it, and a directory watch woke
 * the event loop for every write SQLite made to its WAL.
 *
 * Editors save by writing a new file and renaming it over the old one (and Kubernetes swaps a
 * symlink), which a watch on the old file sees only as its end ("rename"). Then the watch moves to
 * whatever file is at the path now, and that counts as a change; while no file is there, the path
 * is looked at again every second.
 */
import { type FSWatcher, watch as fsWatch } from "node:fs";
import { resolve } from "node:path";

export interface WatchOptions {
  /** Quiet time after the last event before `onChange` runs (default 200ms). */
  debounceMs?: number;
  /** How often a missing file is looked for again (default 1s). */
  recheckMs?: number;
  /** Injected in tests; throws when there is no file to watch. */
  watch?: (file: string, listener: (event: string) => void) => Pick<FSWatcher, "close">;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

/** Starts watching; the returned function stops it (and drops a pending call). */
export function startConfigWatch(path: string, onChange: () => void, options: WatchOptions = {}): () => void {
  const file = resolve(path);
  const debounceMs = options.debounceMs ?? 200;
  const recheckMs = options.recheckMs ?? 1_000;
  const setTimer = options.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
  const clearTimer = options.clearTimer ?? ((h) => clearTimeout(h as ReturnType<typeof setTimeout>));
  const watch = options.watch ?? ((f, listener) => fsWatch(f, { persistent: false }, listener));

  let watcher: Pick<FSWatcher, "close"> | null = null;
  let pending: unknown;
  let recheck: unknown;
  let stopped = false;

  const changed = () => {
    if (stopped) return;
    if (pending !== undefined) clearTimer(pending);
    pending = setTimer(() => {
      pending = undefined;
      if (!stopped) onChange();
    }, debounceMs);
  };

  /** Watches the file at the path now; false when there is none. */
  const arm = (): boolean => {
    let current: Pick<FSWatcher, "close"> | null = null;
    try {
      current = watch(file, (event) => {
        // Events the old file's watch still delivers after it was replaced are not this file's.
        if (stopped || watcher !== current) return;
        if (event === "rename") replaced();
        else changed();
      });
    } catch {
      return false;
    }
    watcher = current;
    return true;
  };

  const replaced = () => {
    watcher?.close();
    watcher = null;
    changed();
    if (!arm()) lookAgain();
  };

  const lookAgain = () => {
    recheck = setTimer(() => {
      recheck = undefined;
      if (stopped) return;
      if (arm()) changed();
      else lookAgain();
    }, recheckMs);
  };

  if (!arm()) lookAgain();
  return () => {
    stopped = true;
    if (pending !== undefined) clearTimer(pending);
    if (recheck !== undefined) clearTimer(recheck);
    watcher?.close();
  };
}
