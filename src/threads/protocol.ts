/**
 * Messages between the main thread and a data-plane thread (worker.ts), and a worker's requests
 * for counter slots, which the main thread's directory answers.
 */
import type { GatewayConfig } from "../config/schema.ts";
import type { SnapshotRows } from "../gateway/build-snapshot.ts";
import type { LogLevel } from "../lib/log.ts";
import type { SharedMemory } from "./memory.ts";
import type { MetricsDump } from "./metrics.ts";
import type { Granted, Want } from "./slot-cache.ts";

/** What a snapshot is built from: the same inputs, so every thread builds the same snapshot. */
export interface SnapshotSource {
  readonly version: number;
  readonly config: Omit<GatewayConfig, "tenants">;
  readonly rows: SnapshotRows;
  /** The vault's values the snapshot may inject (name → value). */
  readonly credentials: [name: string, value: string][];
}

export interface WorkerSettings {
  readonly index: number;
  /** How many data-plane threads there are: they share each upstream's maxConnections. */
  readonly count: number;
  readonly memory: SharedMemory;
  /** Where usage rows and last-used times go: the writer thread, or the main thread (in-memory database). */
  readonly rows: MessagePort;
  readonly maxBodyBytes: number;
  readonly idleSeconds: number;
  /** log.access is on: lines go to the main thread, which writes them. */
  readonly accessLog: boolean;
  /** The HTTP proxy variables of gatehouse's environment: with one set, upstream requests go through fetch. */
  readonly proxyEnv: Record<string, string>;
}

export type ToWorker =
  | { type: "init"; settings: WorkerSettings }
  /** Build it; `level` is the log level in force with it. */
  | { type: "snapshot"; source: SnapshotSource; level: LogLevel }
  | { type: "listen"; hostname: string; port: number }
  | { type: "slots"; id: number; granted: Granted }
  | { type: "slots"; id: number; error: string }
  | { type: "metrics"; id: number }
  | { type: "stop"; drainMs: number };

export type FromWorker =
  | { type: "log"; level: LogLevel; msg: string; fields?: Record<string, unknown> }
  | { type: "prepared"; version: number }
  | { type: "unprepared"; version: number; error: string }
  | { type: "listening"; port: number }
  | { type: "unlistened"; code: string | undefined; message: string }
  | { type: "slots"; id: number; wants: Want[] }
  | { type: "metrics"; id: number; dump: MetricsDump }
  | { type: "access"; chunk: string; lines: number }
  | { type: "stopped" };

/** What goes to the rows port (the writer thread's, or the main thread's with an in-memory database). */
export type RowMessage =
  | { type: "rows"; rows: import("../usage/packed.ts").PackedRows }
  | { type: "lastUsed"; entries: [keyId: string, at: number][] }
  /** This thread posts nothing more. */
  | { type: "end" };

/** A worker's side of asking for slots: one message per ask, answered by id. */
export class SlotAsks {
  private next = 0;
  private readonly waiting = new Map<number, { resolve: (g: Granted) => void; reject: (e: Error) => void }>();

  constructor(private readonly post: (m: FromWorker) => void) {}

  readonly ask = (wants: Want[]): Promise<Granted> => {
    const id = this.next++;
    const { promise, resolve, reject } = Promise.withResolvers<Granted>();
    this.waiting.set(id, { resolve, reject });
    this.post({ type: "slots", id, wants });
    return promise;
  };

  answer(m: Extract<ToWorker, { type: "slots" }>): void {
    const w = this.waiting.get(m.id);
    if (!w) return;
    this.waiting.delete(m.id);
    if ("error" in m) w.reject(new Error(m.error));
    else w.resolve(m.granted);
  }
}
