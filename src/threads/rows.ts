/**
 * With an in-memory database there is no writer thread (another thread cannot open the database),
 * so the data-plane threads post their usage rows and last-used times to the main thread, which
 * writes them as it writes its own. stop() waits for every thread's "end" before the last write.
 */
import { unpackRows } from "../usage/packed.ts";
import type { UsageRow } from "../usage/row.ts";
import type { RowMessage } from "./protocol.ts";

export class RowSink {
  private next = 0;
  private readonly open = new Map<number, MessagePort>();
  private allEnded: (() => void) | undefined;

  constructor(
    private readonly record: (row: UsageRow) => void,
    private readonly used: (keyId: string, at: number) => void,
  ) {}

  /** A channel for one thread; the other end is that thread's. */
  connect(): { id: number; port: MessagePort } {
    const { port1, port2 } = new MessageChannel();
    const id = this.next++;
    this.open.set(id, port1);
    port1.onmessage = (e) => {
      const m = e.data as RowMessage;
      if (m.type === "rows") for (const row of unpackRows(m.rows)) this.record(row);
      else if (m.type === "lastUsed") for (const [keyId, at] of m.entries) this.used(keyId, at);
      else this.gone(id);
    };
    return { id, port: port2 };
  }

  /** The thread behind `id` ended (or died): nothing more comes from it. */
  gone(id: number): void {
    this.open.get(id)?.close();
    this.open.delete(id);
    if (this.open.size === 0) this.allEnded?.();
  }

  /** Resolves once every thread has said "end" (or is gone). */
  ended(): Promise<void> {
    if (this.open.size === 0) return Promise.resolve();
    return new Promise((resolve) => (this.allEnded = resolve));
  }
}
