/**
 * What the proxy asks of an upstream client, whichever carries the request: gatehouse's own HTTP/1.1
 * client (http1/), Bun's fetch, or a built-in upstream answered in-process (response-call.ts). Each
 * enforces the first-byte and idle timeouts itself and says how a call failed in one shape, so the
 * proxy maps every client's failures to the same 502, 504 and 499 answers.
 */
import type { BodyEnd } from "./body.ts";
import type { UpstreamTarget } from "./upstream.ts";

export interface UpstreamRequest {
  target: UpstreamTarget;
  method: string;
  /** The canonical path and the forwarded query, appended to the upstream's base URL. */
  pathAndQuery: string;
  /** Lower-case names and values, alternating (gateway/headers.ts upstreamRequestFields). */
  fields: readonly string[];
  body: ReadableStream<Uint8Array> | null;
  /** The body's declared length, or null when it streams without one (then it is limited). */
  declaredLength: number | null;
  /** Most bytes a body without a declared length may have: past it the call fails with BodyTooLarge. */
  maxBodyBytes: number;
  /** Hears the count of body bytes sent so far, for a body without a declared length. */
  onBodyBytes(n: number): void;
}

export interface UpstreamClient {
  send(request: UpstreamRequest): UpstreamCall;
  /** Closes idle connections and stops housekeeping; calls in flight are not touched. */
  close(): void;
}

export interface UpstreamCall {
  /**
   * The response head, once it has arrived. Rejects with UpstreamTimeout (first-byte timeout), with
   * BodyTooLarge, with an error whose `code` says what the connection did (ECONNREFUSED,
   * ECONNRESET, a TLS or DNS code), or with CallAborted after abort().
   */
  readonly answer: Promise<UpstreamAnswer>;
  /** The client has gone: stop the upstream request wherever it is. */
  abort(): void;
}

export interface UpstreamAnswer {
  status: number;
  statusText: string;
  /** Lower-case names and values, alternating, as the upstream sent them (hop-by-hop ones too). */
  fields: readonly string[];
  /** Header names the upstream's Connection header lists, or null. */
  connectionTokens: readonly string[] | null;
  /** Null when the response has no body (HEAD, 204, 304). */
  body: UpstreamBody | null;
}

export interface UpstreamBody {
  /** The declared length, or null for a chunked or close-delimited body. */
  readonly length: number | null;
  /** The whole body when it had all arrived with the head, else null. */
  readonly complete: Uint8Array | null;
  /** Reads it whole, under the idle timeout; rejects like `answer` (UpstreamTimeout for idle). */
  read(): Promise<Uint8Array>;
  /**
   * Streams it to the client, counting bytes, under the idle timeout. `onEnd` hears once how it
   * ended; `tap` sees every chunk as it passes, before `onEnd`.
   */
  stream(
    onEnd: (how: BodyEnd, bytes: number, err?: unknown) => void,
    tap?: (chunk: Uint8Array) => void,
  ): ReadableStream<Uint8Array>;
}

/** The upstream sent no response head (first-byte) or no body bytes (idle) within its timeout. */
export class UpstreamTimeout extends Error {
  constructor(stage: "first byte" | "idle") {
    super(`upstream ${stage} timeout`);
  }
}

/** The call was stopped because the client left. */
export class CallAborted extends Error {
  constructor() {
    super("the client closed the connection");
  }
}
