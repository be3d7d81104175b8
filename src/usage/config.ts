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
    flushIntervalMs: parseDuration(decl.flushInterval ?? "200ms"),
    flushRows: decl.flushRows ?? 2000,
    bufferRows: decl.bufferRows ?? 100_000,
    retentionMs: parseDuration(decl.retention ?? "90d"),
    synchronous: decl.synchronous ?? "normal",
  };
}
