/**
 * Upstream calls answered with a fetch `Response`: Bun's fetch (where gatehouse's own client cannot
 * go: an HTTP proxy from the environment, or an injected fetch in tests) and the built-in upstreams.
 * One AbortController per call stops the request on its deadlines and when the client leaves.
 */
import type { DeadlineSource } from "../lib/deadlines.ts";
import type { Scheduler } from "../lib/scheduler.ts";
import { BodyTooLarge, limitBody, relayBody } from "./body.ts";
import { fieldsOf, toHeaders } from "./headers.ts";
import { answerMock, type MockBehaviour, type WaitTracker } from "./mock-upstream.ts";
import type { UpstreamTarget } from "./upstream.ts";
import {
  CallAborted,
  type UpstreamAnswer,
  type UpstreamBody,
  type UpstreamCall,
  type UpstreamClient,
  type UpstreamRequest,
  UpstreamTimeout,
} from "./upstream-call.ts";

class ResponseCall implements UpstreamCall {
  readonly answer: Promise<UpstreamAnswer>;
  readonly controller = new AbortController();
  aborted = false;
  private timedOut = false;

  constructor(
    start: (signal: AbortSignal) => Promise<Response>,
    private readonly target: UpstreamTarget,
    readonly deadlines: DeadlineSource,
  ) {
    const deadline = deadlines.after(target.timeoutMs, () => {
      this.timedOut = true;
      this.controller.abort();
    });
    this.answer = start(this.controller.signal).then(
      (res) => {
        deadline.cancel();
        const { fields, connectionTokens } = fieldsOf(res.headers);
        return {
          status: res.status,
          statusText: res.statusText,
          fields,
          connectionTokens,
          body: res.body ? new ResponseBody(res, this) : null,
        };
      },
      (err) => {
        deadline.cancel();
        throw this.failure(err, "first byte");
      },
    );
  }

  abort(): void {
    this.aborted = true;
    this.controller.abort();
  }

  get idleMs(): number {
    return this.target.idleTimeoutMs;
  }

  /** What a rejection means: the client left, a deadline passed, the body was too large, or `err`. */
  failure(err: unknown, stage: "first byte" | "idle"): unknown {
    if (this.aborted) return new CallAborted();
    if (this.timedOut) return new UpstreamTimeout(stage);
    const cause = (err as { cause?: unknown } | null)?.cause;
    return cause instanceof BodyTooLarge ? cause : err;
  }

  /** Stops the request when the body goes quiet for the idle timeout. */
  idleAbort(): void {
    this.timedOut = true;
    this.controller.abort();
  }
}

class ResponseBody implements UpstreamBody {
  readonly length: number | null;
  readonly complete = null;

  constructor(
    private readonly res: Response,
    private readonly call: ResponseCall,
  ) {
    const declared = res.headers.get("content-length");
    this.length = declared === null ? null : Number(declared);
  }

  async read(): Promise<Uint8Array> {
    const idle = this.call.deadlines.after(this.call.idleMs, () => this.call.idleAbort());
    try {
      return await this.res.bytes();
    } catch (err) {
      throw this.call.failure(err, "idle");
    } finally {
      idle.cancel();
    }
  }

  stream(
    onEnd: Parameters<UpstreamBody["stream"]>[0],
    tap?: (chunk: Uint8Array) => void,
  ): ReadableStream<Uint8Array> {
    const { call } = this;
    return relayBody(
      this.res.body!,
      call.idleMs,
      call.deadlines,
      // The body breaks off when the client's leaving aborts the request: that is the client's doing.
      (how, bytes, err) =>
        onEnd(how === "upstream_error" && call.aborted ? "client_aborted" : how, bytes, err),
      () => call.controller.abort(),
      tap,
    );
  }
}

/** Bun's fetch: redirects never followed, bodies never decompressed, streamed both ways. */
export class FetchClient implements UpstreamClient {
  constructor(
    private readonly fetcher: typeof fetch,
    private readonly deadlines: DeadlineSource,
  ) {}

  send(r: UpstreamRequest): UpstreamCall {
    const body =
      r.body && r.declaredLength === null
        ? limitBody(r.body, r.maxBodyBytes, (n) => r.onBodyBytes(n))
        : r.body;
    return new ResponseCall(
      (signal) =>
        this.fetcher(r.target.baseUrl + r.pathAndQuery, {
          method: r.method,
          headers: toHeaders(r.fields),
          body,
          redirect: "manual",
          signal,
          decompress: false,
          duplex: "half",
        } as RequestInit),
      r.target,
      this.deadlines,
    );
  }

  close(): void {}
}

/** A built-in upstream's answer, under the same deadlines as a real one. */
export function mockCall(
  mock: MockBehaviour,
  r: UpstreamRequest,
  deps: { deadlines: DeadlineSource; scheduler: Scheduler; waits?: WaitTracker | undefined },
): UpstreamCall {
  const body =
    r.body && r.declaredLength === null ? limitBody(r.body, r.maxBodyBytes, (n) => r.onBodyBytes(n)) : r.body;
  return new ResponseCall(
    (signal) =>
      answerMock(mock, {
        upstream: r.target.name,
        method: r.method,
        pathAndQuery: r.pathAndQuery,
        headers: toHeaders(r.fields),
        body,
        signal,
        scheduler: deps.scheduler,
        waits: deps.waits,
      }),
    r.target,
    deps.deadlines,
  );
}
