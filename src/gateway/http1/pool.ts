/**
 * Keep-alive connections to one upstream, at most `max` open at a time (connecting, idle or busy).
 * A request takes the most recently used idle connection (the one least likely to have been closed
 * by the upstream meanwhile), else opens one while under the cap, else waits its turn. An idle
 * connection the upstream closes leaves the pool at once; one idle for longer than the keep-alive
 * time (4 s, or less when the upstream's Keep-Alive header says so) is closed by the client's
 * housekeeping, before a typical upstream (5 s and up) would close it under a request.
 *
 * An upstream may still close a connection just as a request goes out on it. An idempotent request
 * is then sent again (exchange.ts); one that is not must not be, so it only takes a connection that
 * was busy within the last second, and otherwise a new one.
 */

/** How long a connection may sit idle in a pool: below the 5 s that common servers keep one. */
export const KEEP_ALIVE_MS = 4_000;
/** The longest idle time after which a request that cannot be repeated still takes a connection. */
export const UNREPEATABLE_IDLE_MS = 1_000;

import type { Socket, SocketHandler } from "bun";

/** What a pool hands connections to (http1/exchange.ts). */
export interface PoolUser {
  /** Whether it still wants a connection (it may have timed out or been aborted while waiting). */
  readonly waiting: boolean;
  attach(conn: Connection): void;
  /** No connection could be opened for it. */
  connectFailed(err: Error): void;
}

/** What a connection tells the exchange using it. */
export interface ConnectionUser {
  onData(chunk: Buffer): void;
  onClosed(err: Error | undefined): void;
  onDrain(): void;
}

export interface Origin {
  hostname: string;
  port: number;
  tls: boolean;
  /** The Host header: host and port as the URL wrote them. */
  host: string;
  /** The base URL's path, without a trailing slash ("" for none). */
  basePath: string;
}

export class Connection {
  socket: Socket<Connection> | null = null;
  user: ConnectionUser | null = null;
  /** It has carried a request before: a failure before any answer may be a stale keep-alive. */
  reused = false;
  /** Connected (and through its TLS handshake): it counts as open in the pool until it closes. */
  connected = false;
  closed = false;
  idleSince = 0;
  /** How long it may sit idle: KEEP_ALIVE_MS, or less when the upstream's Keep-Alive says so. */
  keepAliveMs = KEEP_ALIVE_MS;
  private unsent: Uint8Array | null = null;
  private error: Error | undefined;

  constructor(readonly pool: Pool) {}

  /**
   * Writes `data` (a string must be ASCII: its length is its size); false when part of it waits for
   * the socket to drain (then onDrain follows).
   */
  write(data: string | Uint8Array): boolean {
    const socket = this.socket;
    if (this.closed || socket === null) return false;
    if (this.unsent !== null) {
      this.unsent = concat(this.unsent, toBytes(data));
      return false;
    }
    const written = socket.write(data);
    const size = typeof data === "string" ? data.length : data.byteLength;
    if (written === size) return true;
    if (written < 0) return false; // closed: the close event tells the user
    this.unsent = toBytes(data).subarray(written);
    return false;
  }

  /** Whether everything written so far has gone to the socket. */
  get flushed(): boolean {
    return this.unsent === null;
  }

  pause(): void {
    this.socket?.pause();
  }

  resume(): void {
    this.socket?.resume();
  }

  /** Closes at once (an abort, an error, a response that leaves the connection unusable). */
  destroy(): void {
    if (this.closed) return;
    this.closed = true;
    this.user = null;
    this.socket?.terminate();
    this.pool.removed(this);
  }

  /** Hands the connection back for the next request. */
  release(): void {
    this.user = null;
    this.reused = true;
    this.pool.released(this);
  }

  // Socket events, from the shared handler.

  opened(socket: Socket<Connection>): void {
    this.socket = socket;
    if (!this.pool.origin.tls) this.pool.connected(this);
  }

  handshake(ok: boolean, err: Error | null): void {
    if (ok) this.pool.connected(this);
    else this.failed(err ?? Object.assign(new Error("TLS handshake failed"), { code: "EPROTO" }));
  }

  failed(err: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.socket?.terminate();
    this.pool.connectFailed(this, err);
  }

  data(chunk: Buffer): void {
    if (this.user) this.user.onData(chunk);
    // An idle connection has nothing to say: what it says anyway cannot be framed.
    else this.destroy();
  }

  drain(): void {
    const socket = this.socket;
    if (this.unsent === null || socket === null) return;
    const written = socket.write(this.unsent);
    if (written < 0) return;
    this.unsent = written === this.unsent.byteLength ? null : this.unsent.subarray(written);
    if (this.unsent === null) this.user?.onDrain();
  }

  noteError(err: Error): void {
    this.error ??= err;
  }

  socketClosed(err: Error | undefined): void {
    const wasOpen = !this.closed;
    this.closed = true;
    const user = this.user;
    this.user = null;
    if (wasOpen) {
      if (!this.connected) {
        this.pool.connectFailed(this, err ?? this.error ?? closedError());
        return;
      }
      this.pool.removed(this);
    }
    user?.onClosed(err ?? this.error);
  }
}

const handler: SocketHandler<Connection> = {
  binaryType: "buffer",
  open: (s) => s.data.opened(s),
  handshake: (s, ok, err) => s.data.handshake(ok, err),
  data: (s, chunk) => s.data.data(chunk),
  drain: (s) => s.data.drain(),
  error: (s, err) => s.data.noteError(err),
  close: (s, err) => s.data.socketClosed(err),
  connectError: (s, err) => s.data.failed(err),
};

/** The error for a connection that closed without saying why (as fetch reports it). */
export function closedError(): Error {
  return Object.assign(new Error("the upstream closed the connection"), { code: "ECONNRESET" });
}

export class Pool {
  private readonly idle: Connection[] = [];
  private readonly queue: PoolUser[] = [];
  private queueHead = 0;
  /** Users in the queue that still wait (the queue may hold some that stopped: see leave()). */
  private waiting = 0;
  private open = 0;
  private connecting = 0;

  constructor(
    readonly origin: Origin,
    public max: number,
    private readonly now: () => number,
    private readonly ca?: string,
  ) {}

  /**
   * Gives `user` a connection now or when one is free: an idle one that has waited at most
   * `maxIdleMs` (and not past its keep-alive time), else a new one; `fresh` skips the idle ones (a
   * retry).
   */
  acquire(user: PoolUser, fresh = false, maxIdleMs = KEEP_ALIVE_MS): void {
    if (!fresh && this.idle.length > 0) {
      const conn = this.idle[this.idle.length - 1]!;
      const idle = this.now() - conn.idleSince;
      if (idle <= maxIdleMs && idle < conn.keepAliveMs) {
        this.idle.pop();
        user.attach(conn);
        return;
      }
    }
    this.queue.push(user);
    this.waiting++;
    this.connectIfNeeded();
  }

  /** `user`, queued by acquire(), stopped waiting (it timed out or its client left). */
  leave(_user: PoolUser): void {
    this.waiting--;
  }

  released(conn: Connection): void {
    if (conn.closed) return;
    const next = this.nextWaiting();
    if (next) next.attach(conn);
    else {
      conn.idleSince = this.now();
      this.idle.push(conn);
    }
  }

  connected(conn: Connection): void {
    this.connecting--;
    conn.connected = true;
    this.released(conn);
  }

  connectFailed(_conn: Connection, err: Error): void {
    this.connecting--;
    this.open--;
    this.nextWaiting()?.connectFailed(err);
  }

  /** A connected connection closed or was destroyed. */
  removed(conn: Connection): void {
    if (!conn.connected) return;
    conn.connected = false;
    this.open--;
    const at = this.idle.lastIndexOf(conn);
    if (at >= 0) this.idle.splice(at, 1);
    this.connectIfNeeded();
  }

  /** Closes the idle connections past their keep-alive time, or all of them. */
  closeIdle(all = false): void {
    const now = this.now();
    for (const conn of this.idle.slice()) {
      if (all || now - conn.idleSince >= conn.keepAliveMs) conn.destroy();
    }
  }

  get idleCount(): number {
    return this.idle.length;
  }

  private connectIfNeeded(): void {
    if (this.open < this.max && this.connecting < this.waiting) this.connect();
  }

  private connect(): void {
    this.open++;
    this.connecting++;
    const conn = new Connection(this);
    const { hostname, port, tls } = this.origin;
    // Certificates and the host name are verified (Bun's default); SNI is the host name.
    const secure = tls ? { tls: this.ca === undefined ? true : { ca: this.ca } } : {};
    Bun.connect({ hostname, port, ...secure, data: conn, socket: handler }).catch(
      () => {}, // connectError has it
    );
  }

  private nextWaiting(): PoolUser | undefined {
    while (this.queueHead < this.queue.length) {
      const user = this.queue[this.queueHead]!;
      this.queue[this.queueHead++] = undefined as unknown as PoolUser;
      if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
        this.queue.splice(0, this.queueHead);
        this.queueHead = 0;
      }
      if (this.queueHead === this.queue.length) {
        this.queue.length = 0;
        this.queueHead = 0;
      }
      if (user.waiting) {
        this.waiting--;
        return user;
      }
    }
    return undefined;
  }
}

function toBytes(data: string | Uint8Array): Uint8Array {
  return typeof data === "string" ? Buffer.from(data, "latin1") : data;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a, 0);
  out.set(b, a.byteLength);
  return out;
}
