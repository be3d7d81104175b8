/**
 * One request and its response over a pooled connection: the head written, the body streamed up
 * (framed by its length or chunked, limited when it has no length), the response head parsed, and
 * the body handed over whole when it came with the head, else read or streamed under the idle
 * timeout. The connection goes back to the pool only after a response that ended exactly where its
 * framing said, on a connection both sides keep open, with the request fully sent.
 *
 * A request that fails on a reused connection before any byte of an answer may have met a keep-alive
 * connection the upstream was closing at that moment: an idempotent request without a body (which
 * cannot have been half-read) is sent once more, on a new connection.
 */
import type { Deadline, DeadlineSource } from "../../lib/deadlines.ts";
import type { BodyEnd } from "../body.ts";
import { BodyTooLarge } from "../body.ts";
import {
  CallAborted,
  type UpstreamAnswer,
  type UpstreamBody,
  type UpstreamCall,
  type UpstreamRequest,
  UpstreamTimeout,
} from "../upstream-call.ts";
import { ChunkedDecoder } from "./chunked.ts";
import {
  type Connection,
  type ConnectionUser,
  closedError,
  KEEP_ALIVE_MS,
  type Pool,
  type PoolUser,
  UNREPEATABLE_IDLE_MS,
} from "./pool.ts";
import { type BodyFraming, encodeHead, requestHead } from "./request-head.ts";
import {
  type Framing,
  headEnd,
  MalformedResponse,
  parseResponseHead,
  type ResponseHead,
} from "./response-head.ts";

/** Largest response head accepted (status line and headers). */
export const MAX_RESPONSE_HEAD = 64 * 1024;

/** Bytes of body held for a slow client before the upstream connection stops being read. */
const STREAM_HIGH_WATER = 64 * 1024;

/** RFC 9110 §9.2.2; TRACE is never forwarded. */
const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]);

enum Phase {
  /** Waiting for a connection from the pool. */
  Queued,
  /** Sending the request, waiting for the response head. */
  Head,
  /** The head arrived; the body is arriving. */
  Body,
  Done,
}

type OnEnd = (how: BodyEnd, bytes: number, err?: unknown) => void;

export class Exchange implements UpstreamCall, UpstreamBody, PoolUser, ConnectionUser {
  readonly answer: Promise<UpstreamAnswer>;
  length: number | null = null;
  complete: Uint8Array | null = null;

  private resolveAnswer!: (a: UpstreamAnswer) => void;
  private rejectAnswer!: (err: unknown) => void;
  private phase = Phase.Queued;
  private conn: Connection | null = null;
  private deadline: Deadline | null;
  private retried = false;
  /** Bytes of the response head received so far (across chunks), or null. */
  private partialHead: Buffer | null = null;
  private framing: Framing | null = null;
  private keepAlive = false;
  private remaining = 0;
  private decoder: ChunkedDecoder | null = null;
  /** The request's head and body have all been handed to the socket. */
  private sent = false;
  private bodyReader: { cancel(): Promise<void> } | null = null;
  private drained: (() => void) | null = null;

  // The body's consumer: chunks held until there is one, then read() or stream().
  private held: Uint8Array[] | null = null;
  private received = 0;
  private bodyError: unknown = null;
  private readWaiter: { resolve: (b: Uint8Array) => void; reject: (e: unknown) => void } | null = null;
  private controller: ReadableStreamDefaultController<Uint8Array> | null = null;
  private onEnd: OnEnd | null = null;
  private tap: ((chunk: Uint8Array) => void) | undefined;
  private paused = false;
  /** How the body failed, once it has. */
  private failure: BodyEnd | null = null;
  /** onEnd has been called. */
  private reported = false;

  constructor(
    private readonly r: UpstreamRequest,
    private readonly pool: Pool,
    private readonly deadlines: DeadlineSource,
  ) {
    this.answer = new Promise((resolve, reject) => {
      this.resolveAnswer = resolve;
      this.rejectAnswer = reject;
    });
    this.deadline = deadlines.after(r.target.timeoutMs, () => this.timedOut());
    pool.acquire(this, false, this.repeatable() ? KEEP_ALIVE_MS : UNREPEATABLE_IDLE_MS);
  }

  /** Whether the request may be sent twice: idempotent, and no body that was read once already. */
  private repeatable(): boolean {
    return this.r.body === null && IDEMPOTENT.has(this.r.method);
  }

  // PoolUser

  get waiting(): boolean {
    return this.phase === Phase.Queued;
  }

  attach(conn: Connection): void {
    this.phase = Phase.Head;
    this.conn = conn;
    conn.user = this;
    const r = this.r;
    const framing: BodyFraming = r.declaredLength !== null ? "length" : r.body ? "chunked" : "none";
    const head = requestHead(
      r.method,
      this.pool.origin.basePath + r.pathAndQuery,
      this.pool.origin.host,
      r.fields,
      framing,
    );
    let bytes: string | Buffer;
    try {
      bytes = encodeHead(head);
    } catch (err) {
      this.fail(err);
      return;
    }
    conn.write(bytes);
    if (r.body === null) this.sent = true;
    else void this.sendBody(conn, r.body, framing === "chunked");
  }

  connectFailed(err: Error): void {
    // The pool has taken it out of its queue already.
    this.phase = Phase.Head;
    this.fail(err);
  }

  // UpstreamCall

  abort(): void {
    if (this.phase === Phase.Done) return;
    if (this.phase === Phase.Body) this.bodyFailed(new CallAborted(), "client_aborted");
    else this.fail(new CallAborted());
  }

  // ConnectionUser

  onData(chunk: Buffer): void {
    if (this.phase === Phase.Head) this.headData(chunk);
    else if (this.phase === Phase.Body) this.bodyData(chunk, 0);
    // Bytes after the end of the response: the connection is out of step, so it goes.
    else this.conn?.destroy();
  }

  onClosed(err: Error | undefined): void {
    const conn = this.conn;
    this.conn = null;
    if (this.phase === Phase.Head) {
      const nothingYet = this.partialHead === null;
      if (nothingYet && conn?.reused && !this.retried && this.repeatable()) {
        this.retried = true;
        this.phase = Phase.Queued;
        this.sent = false;
        this.pool.acquire(this, true);
        return;
      }
      this.fail(withCode(err));
    } else if (this.phase === Phase.Body) {
      if (this.framing?.kind === "close") this.bodyEnded();
      else this.bodyFailed(withCode(err), "upstream_error");
    }
  }

  onDrain(): void {
    const resume = this.drained;
    this.drained = null;
    resume?.();
  }

  // The request body

  private async sendBody(
    conn: Connection,
    body: ReadableStream<Uint8Array>,
    chunked: boolean,
  ): Promise<void> {
    const reader = body.getReader();
    this.bodyReader = reader;
    let total = 0;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (this.conn !== conn || this.phase === Phase.Done) {
          reader.cancel().catch(() => {});
          return;
        }
        if (done) {
          if (chunked) conn.write("0\r\n\r\n");
          break;
        }
        total += value.byteLength;
        if (chunked) {
          this.r.onBodyBytes(total);
          if (total > this.r.maxBodyBytes) throw new BodyTooLarge();
        }
        if (value.byteLength === 0) continue;
        const ok = chunked ? conn.write(chunk(value)) : conn.write(value);
        // The declared length is all there is: the upstream may answer before the stream says done.
        if (!chunked && total >= (this.r.declaredLength ?? 0)) this.sent = true;
        if (!ok && !conn.closed) await new Promise<void>((resolve) => (this.drained = resolve));
      }
      this.sent = true;
      this.bodyReader = null;
    } catch (err) {
      this.bodyReader = null;
      reader.cancel().catch(() => {});
      if (this.conn !== conn) return;
      // The client's upload broke off or ran over the limit: the request cannot be completed.
      if (this.phase === Phase.Body) this.bodyFailed(err, "upstream_error");
      else if (this.phase !== Phase.Done) this.fail(err);
    }
  }

  // The response head

  private headData(chunk: Buffer): void {
    let buf = chunk;
    if (this.partialHead !== null) buf = Buffer.concat([this.partialHead, chunk]);
    for (;;) {
      const end = headEnd(buf);
      if (end < 0) {
        if (buf.byteLength > MAX_RESPONSE_HEAD) {
          this.fail(new MalformedResponse("HPE_HEADER_OVERFLOW", "response head too large"));
        } else this.partialHead = buf;
        return;
      }
      if (end > MAX_RESPONSE_HEAD) {
        this.fail(new MalformedResponse("HPE_HEADER_OVERFLOW", "response head too large"));
        return;
      }
      let head: ResponseHead;
      try {
        head = parseResponseHead(buf.toString("latin1", 0, end), this.r.method === "HEAD");
      } catch (err) {
        this.fail(err);
        return;
      }
      if (head.status >= 200) {
        this.partialHead = null;
        this.headArrived(head, buf, end);
        return;
      }
      // 1xx: an interim answer (100 Continue, 103 Early Hints); the final one follows.
      if (head.status === 101) {
        this.fail(new MalformedResponse("HPE_INVALID_RESPONSE", "invalid response: unrequested upgrade"));
        return;
      }
      buf = buf.subarray(end);
      this.partialHead = buf.byteLength > 0 ? buf : Buffer.alloc(0);
      if (buf.byteLength === 0) return;
    }
  }

  private headArrived(head: ResponseHead, buf: Buffer, end: number): void {
    this.deadline?.cancel();
    this.deadline = null;
    this.framing = head.framing;
    this.keepAlive = head.keepAlive;
    if (this.conn !== null && head.keepAliveMs !== null) {
      this.conn.keepAliveMs = Math.min(this.conn.keepAliveMs, head.keepAliveMs);
    }
    const answer: UpstreamAnswer = {
      status: head.status,
      statusText: head.statusText,
      fields: head.headers,
      connectionTokens: head.connectionTokens,
      body: this,
    };
    const framing = head.framing;
    if (framing.kind === "none") {
      answer.body = null;
      this.phase = Phase.Done;
      if (end < buf.byteLength) this.keepAlive = false;
      this.finishConnection();
    } else if (framing.kind === "length") {
      this.length = framing.length;
      const available = buf.byteLength - end;
      if (available >= framing.length) {
        // The usual answer: the whole body came with the head.
        this.complete = buf.subarray(end, end + framing.length);
        this.received = framing.length;
        this.phase = Phase.Done;
        if (available > framing.length) this.keepAlive = false;
        this.finishConnection();
      } else {
        this.remaining = framing.length;
        this.startBody(buf, end);
      }
    } else {
      if (framing.kind === "chunked") this.decoder = new ChunkedDecoder();
      this.startBody(buf, end);
    }
    this.resolveAnswer(answer);
  }

  // The response body

  private startBody(buf: Buffer, from: number): void {
    this.phase = Phase.Body;
    this.held = [];
    this.deadline = this.deadlines.after(this.r.target.idleTimeoutMs, () => this.idleTimedOut());
    if (from < buf.byteLength) this.bodyData(buf, from);
  }

  private bodyData(buf: Buffer, from: number): void {
    if (!this.paused) this.deadline?.renew();
    const framing = this.framing!;
    try {
      if (framing.kind === "length") {
        const n = Math.min(this.remaining, buf.byteLength - from);
        this.deliver(buf.subarray(from, from + n));
        this.remaining -= n;
        if (this.remaining === 0) {
          if (from + n < buf.byteLength) this.keepAlive = false;
          this.bodyEnded();
        }
      } else if (framing.kind === "chunked") {
        const decoder = this.decoder!;
        const at = decoder.push(buf, from, (data) => this.deliver(data));
        if (decoder.done) {
          if (at < buf.byteLength) this.keepAlive = false;
          this.bodyEnded();
        }
      } else this.deliver(from === 0 ? buf : buf.subarray(from));
    } catch (err) {
      this.bodyFailed(err, "upstream_error");
    }
  }

  private deliver(data: Uint8Array): void {
    if (data.byteLength === 0 || this.phase !== Phase.Body) return;
    this.received += data.byteLength;
    const controller = this.controller;
    if (controller === null) {
      this.held!.push(data);
      return;
    }
    this.tap?.(data);
    controller.enqueue(data);
    if ((controller.desiredSize ?? 1) <= 0 && !this.paused) {
      // The client reads slower than the upstream sends: stop reading the upstream meanwhile. The
      // idle timeout is the upstream's silence, so it does not run while we are the ones waiting.
      this.paused = true;
      this.conn?.pause();
      this.deadline?.cancel();
    }
  }

  private bodyEnded(): void {
    this.phase = Phase.Done;
    this.deadline?.cancel();
    this.deadline = null;
    this.finishConnection();
    if (this.controller !== null) {
      this.controller.close();
      this.end("complete");
    } else if (this.readWaiter !== null) {
      this.readWaiter.resolve(this.whole());
      this.readWaiter = null;
    }
  }

  private bodyFailed(err: unknown, how: BodyEnd): void {
    if (this.phase !== Phase.Body) return;
    this.phase = Phase.Done;
    this.deadline?.cancel();
    this.deadline = null;
    this.dropConnection();
    this.bodyError = err;
    this.failure = how;
    if (this.controller !== null) {
      this.end(how, err);
      try {
        this.controller.error(err);
      } catch {
        // A client that left has cancelled the stream already.
      }
    } else if (this.readWaiter !== null) {
      this.readWaiter.reject(err);
      this.readWaiter = null;
    }
  }

  private end(how: BodyEnd, err?: unknown): void {
    if (this.reported) return;
    this.reported = true;
    this.onEnd?.(how, this.received, err);
  }

  private idleTimedOut(): void {
    this.deadline = null;
    this.bodyFailed(new UpstreamTimeout("idle"), "idle_timeout");
  }

  // UpstreamBody

  read(): Promise<Uint8Array> {
    if (this.complete !== null) return Promise.resolve(this.complete);
    if (this.phase === Phase.Done) {
      return this.failure !== null ? Promise.reject(this.bodyError) : Promise.resolve(this.whole());
    }
    return new Promise((resolve, reject) => {
      this.readWaiter = { resolve, reject };
    });
  }

  stream(onEnd: OnEnd, tap?: (chunk: Uint8Array) => void): ReadableStream<Uint8Array> {
    this.onEnd = onEnd;
    this.tap = tap;
    return new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          const held = this.held ?? [];
          this.held = null;
          for (const c of held) {
            tap?.(c);
            controller.enqueue(c);
          }
          if (this.phase === Phase.Done) {
            if (this.failure !== null) {
              this.end(this.failure, this.bodyError);
              controller.error(this.bodyError);
            } else {
              controller.close();
              this.end("complete");
            }
            return;
          }
          this.controller = controller;
        },
        pull: () => {
          if (!this.paused) return;
          this.paused = false;
          this.conn?.resume();
          if (this.phase === Phase.Body) {
            this.deadline ??= this.deadlines.after(this.r.target.idleTimeoutMs, () => this.idleTimedOut());
            this.deadline.renew();
          }
        },
        cancel: () => {
          if (this.phase === Phase.Body) this.bodyFailed(new CallAborted(), "client_aborted");
          this.end("client_aborted");
        },
      },
      { highWaterMark: STREAM_HIGH_WATER, size: (c) => c?.byteLength ?? 0 },
    );
  }

  private whole(): Uint8Array {
    const held = this.held ?? [];
    this.held = null;
    if (held.length === 1) return held[0]!;
    const out = new Uint8Array(this.received);
    let at = 0;
    for (const c of held) {
      out.set(c, at);
      at += c.byteLength;
    }
    return out;
  }

  // Endings

  /** Before the head: the call fails with `err`; the connection (if any) is closed. */
  private fail(err: unknown): void {
    if (this.phase === Phase.Done) return;
    if (this.phase === Phase.Queued) this.pool.leave(this);
    this.phase = Phase.Done;
    this.deadline?.cancel();
    this.deadline = null;
    this.dropConnection();
    this.rejectAnswer(err);
  }

  private timedOut(): void {
    this.deadline = null;
    this.fail(new UpstreamTimeout("first byte"));
  }

  /** The response ended: the connection goes back to the pool if it can carry another request. */
  private finishConnection(): void {
    const conn = this.conn;
    if (conn === null) return;
    if (!this.keepAlive || conn.closed) {
      this.dropConnection();
      return;
    }
    // The upstream answered before it had the whole request (an early refusal): what it has not read
    // yet would be taken for the next request.
    if (!this.sent || !conn.flushed) {
      this.dropConnection();
      return;
    }
    this.conn = null;
    conn.release();
  }

  private dropConnection(): void {
    const conn = this.conn;
    this.conn = null;
    conn?.destroy();
    if (this.bodyReader !== null) {
      this.bodyReader.cancel().catch(() => {});
      this.bodyReader = null;
    }
  }
}

function chunk(data: Uint8Array): Uint8Array {
  const size = `${data.byteLength.toString(16)}\r\n`;
  const out = Buffer.allocUnsafe(size.length + data.byteLength + 2);
  out.write(size, 0, "latin1");
  out.set(data, size.length);
  out[out.length - 2] = 13;
  out[out.length - 1] = 10;
  return out;
}

/** The connection's error, with a code the failure classification reads (ECONNRESET by default). */
function withCode(err: Error | undefined): Error {
  if (err && typeof (err as { code?: unknown }).code === "string") return err;
  return closedError();
}
