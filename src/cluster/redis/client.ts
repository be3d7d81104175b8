/**
 * One connection to Redis, through Bun's built-in client, for running gatehouse's scripts with a
 * deadline. Nothing waits for Redis much longer than `timeoutMs` (at most a quarter more): a call that
 * takes longer, or finds the connection down, rejects with a StoreUnavailable, and the caller decides
 * without Redis. The client
 * never queues commands while disconnected and never reconnects by itself: `connect()` (the health
 * probe's) is the only way back, so a dead Redis costs requests nothing but a failed check of a flag.
 */
import { RedisClient } from "bun";
import type { Cancel, Scheduler } from "../../lib/scheduler.ts";
import type { Script } from "./scripts.ts";

/** Why Redis gave no answer: the closed list metrics and logs name. */
export type StoreFailure = "timeout" | "disconnected" | "error";
export const STORE_FAILURES: readonly StoreFailure[] = ["timeout", "disconnected", "error"];

export class StoreUnavailable extends Error {
  constructor(
    readonly failure: StoreFailure,
    message: string,
  ) {
    super(message);
  }
}

export interface RedisConnectionOptions {
  readonly url: string;
  readonly timeoutMs: number;
  /** Runs the deadlines: real time, also in test mode (a frozen clock would never end a wait). */
  readonly scheduler: Scheduler;
}

/** A call waiting for its answer: rejected by the deadline tick unless it is settled first. */
interface Waiting {
  readonly tick: number;
  settled: boolean;
  readonly reject: (err: StoreUnavailable) => void;
  readonly what: string;
}

/** Deadline ticks per timeout: a call is given up after more than TICKS ticks, 1 to 1.25 timeouts after it was sent. */
const TICKS = 4;

export class RedisConnection {
  private readonly client: RedisClient;
  private closed = false;
  /** Hears the connection close (Redis gone, or the network). */
  onClose: (reason: string) => void = () => {};
  /**
   * Calls in the order they were sent. One timer for all of them: a timer per call cost a tenth of
   * the node's CPU per request, for a deadline that almost never fires.
   */
  private waiting: Waiting[] = [];
  private tick = 0;
  private stopTicking: Cancel | null = null;

  constructor(private readonly opts: RedisConnectionOptions) {
    this.client = new RedisClient(opts.url, {
      autoReconnect: false,
      enableOfflineQueue: false,
      // Only the probe connects, off the request path: it may wait longer than a request would.
      connectionTimeout: Math.max(1000, opts.timeoutMs),
    });
    this.client.onclose = (err) => {
      if (!this.closed) this.onClose(err?.message ?? "connection closed");
    };
  }

  get connected(): boolean {
    return this.client.connected;
  }

  /** Connects if not connected; rejects with StoreUnavailable when Redis cannot be reached. */
  async connect(): Promise<void> {
    if (this.client.connected) return;
    try {
      await this.client.connect();
    } catch (err) {
      throw new StoreUnavailable("disconnected", messageOf(err));
    }
  }

  /** Runs `script` (EVALSHA, or EVAL when Redis does not hold it yet), within the deadline. */
  run(script: Script, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    if (!this.client.connected) {
      return Promise.reject(new StoreUnavailable("disconnected", "not connected to Redis"));
    }
    const call = [script.sha, String(keys.length)];
    for (const k of keys) call.push(k);
    for (const a of args) call.push(typeof a === "string" ? a : String(a));
    const sent = this.client.send("EVALSHA", call).catch((err: unknown) => {
      if (!messageOf(err).startsWith("NOSCRIPT")) throw err;
      call[0] = script.source;
      return this.client.send("EVAL", call);
    });
    return this.withDeadline(sent, script.name);
  }

  /** One plain command, within the deadline. */
  send(command: string, args: readonly (string | number)[]): Promise<unknown> {
    if (!this.client.connected) {
      return Promise.reject(new StoreUnavailable("disconnected", "not connected to Redis"));
    }
    return this.withDeadline(this.client.send(command, args.map(String)), command);
  }

  close(): void {
    this.closed = true;
    this.stopTicking?.();
    this.stopTicking = null;
    this.client.close();
  }

  private withDeadline<T>(call: Promise<T>, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const w: Waiting = { tick: this.tick, settled: false, reject, what };
      this.waiting.push(w);
      this.stopTicking ??= this.opts.scheduler.every(
        Math.max(1, Math.floor(this.opts.timeoutMs / TICKS)),
        () => this.expire(),
      );
      call.then(
        (v) => {
          w.settled = true;
          resolve(v);
        },
        (err: unknown) => {
          w.settled = true;
          reject(
            err instanceof StoreUnavailable
              ? err
              : new StoreUnavailable(
                  (err as { code?: string }).code === "ERR_REDIS_CONNECTION_CLOSED"
                    ? "disconnected"
                    : "error",
                  `${what}: ${messageOf(err)}`,
                ),
          );
        },
      );
    });
  }

  /** One tick: gives up the calls sent more than TICKS ticks ago; stops ticking once none waits. */
  private expire(): void {
    this.tick++;
    let i = 0;
    for (; i < this.waiting.length; i++) {
      const w = this.waiting[i]!;
      if (w.settled) continue;
      if (this.tick - w.tick <= TICKS) break;
      w.settled = true;
      w.reject(new StoreUnavailable("timeout", `${w.what}: no answer within ${this.opts.timeoutMs} ms`));
    }
    // Later calls were sent later, so everything before i is settled.
    if (i > 0) this.waiting = this.waiting.slice(i);
    if (this.waiting.every((w) => w.settled)) {
      this.waiting = [];
      this.stopTicking?.();
      this.stopTicking = null;
    }
  }
}

const messageOf = (err: unknown) => (err instanceof Error ? err.message : String(err));
