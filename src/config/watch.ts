/**
 * Watches the config file for changes and calls `onChange` once per burst of writes. It watches the
 * directory, not the file: editors save by writing a new file and renaming it over the old one,
 * which a watch on the old file's inode never sees.
 */
import { type FSWatcher, watch as fsWatch } from "node:fs";
import { basename, dirname, resolve } from "node:path";

export interface WatchOptions {
  /** Quiet time after the last event before `onChange` runs (default 200ms). */
  debounceMs?: number;
  /** Injected in tests. */
  watch?: (
    dir: string,
    listener: (event: string, filename: string | null) => void,
  ) => Pick<FSWatcher, "close">;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

/** Starts watching; the returned function stops it (and drops a pending call). */
export function startConfigWatch(path: string, onChange: () => void, options: WatchOptions = {}): () => void {
  const file = basename(path);
  const debounceMs = options.debounceMs ?? 200;
  const setTimer = options.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
  const clearTimer = options.clearTimer ?? ((h) => clearTimeout(h as ReturnType<typeof setTimeout>));
  const watch = options.watch ?? ((dir, listener) => fsWatch(dir, { persistent: false }, listener));

  let pending: unknown;
  let stopped = false;
  const watcher = watch(dirname(resolve(path)), (_event, filename) => {
    // Some platforms omit the name; then any change in the directory may be ours.
    if (stopped || (filename !== null && basename(filename) !== file)) return;
    if (pending !== undefined) clearTimer(pending);
    pending = setTimer(() => {
      pending = undefined;
      if (!stopped) onChange();
    }, debounceMs);
  });
  return () => {
    stopped = true;
    if (pending !== undefined) clearTimer(pending);
    watcher.close();
  };
}
