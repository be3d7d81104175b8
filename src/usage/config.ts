/** The `usage:` section of gateway.yaml with its defaults applied. */
import type { UsageDecl } from "../config/schema.ts";
import { parseDuration } from "../config/units.ts";

export interface UsageSettings {
  flushIntervalMs: number;
  flushRows: number;
  bufferRows: number;
  /** 0 keeps rows forever. */
  retentionMs: number;
  synchronous: "normal" | "full";
}

export function usageSettings(decl: UsageDecl = {}): UsageSettings {
  return {
    // Larger batches halve the writer thread's cost per row (rollups are summed per batch); the
    // price is the crash window: rows not yet written when the process is killed (README).
    flushIntervalMs: parseDuration(decl.flushInterval ?? "1s"),
    flushRows: decl.flushRows ?? 10_000,
    bufferRows: decl.bufferRows ?? 100_000,
    retentionMs: parseDuration(decl.retention ?? "90d"),
    synchronous: decl.synchronous ?? "normal",
  };
}
