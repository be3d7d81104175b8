/**
 * Forwards an admitted request to its upstream and relays the answer. Never follows redirects; a
 * refused connection is 502, no response headers in time is 504.
 *
 * Request bodies always stream. A response whose whole body came with its head is sent as it is;
 * one that declares a small Content-Length is read whole (bounded by READ_WHOLE_LIMIT) and then
 * sent, which tells the usage row exactly when the body ended and keeps a body that breaks off a
 * proper 502 or 504. Larger or chunked responses stream, counted and under the idle timeout.
 *
 * The upstream client (upstream-call.ts) enforces the timeouts and says how a call failed; which
 * client carries a request is decided once (upstream-clients.ts), built-in upstreams aside.
 *
 * A route that measures its cost (`costFrom`) reads it from a response header, or from a copy of the
 * JSON body taken as it passes (measure-cost.ts); either way the answer is never held back for it.
 */
import { tenantContext } from "../identity/context-header.ts";
import type { DeadlineSource } from "../lib/deadlines.ts";
import type { Scheduler } from "../lib/scheduler.ts";
import type { RequestContext, RequestOutcome } from "../policies/policy.ts";
import { BodyTooLarge } from "./body.ts";
import { clientResponseFields, toHeaders, upstreamRequestFields } from "./headers.ts";
import { BodyCapture, costFromHeader, costFromJson } from "./measure-cost.ts";
import type { WaitTracker } from "./mock-upstream.ts";
import { Refusal } from "./refusal.ts";
import { mockCall } from "./response-call.ts";
import type { UpstreamTarget } from "./upstream.ts";
import {
  CallAborted,
  type UpstreamAnswer,
  type UpstreamCall,
  type UpstreamClient,
  type UpstreamRequest,
  UpstreamTimeout,
} from "./upstream-call.ts";
import { classifyUpstreamFailure, errorCode, type FailureStage } from "./upstream-failure.ts";
import type { FailureReport } from "./upstream-failure-log.ts";

const READ_WHOLE_LIMIT = 256 * 1024;

export interface ProxyDeps {
  /** Carries requests to real upstreams (upstream-clients.ts). */
  client: UpstreamClient;
  maxBodyBytes: number;
  now: () => number;
  /** The upstream deadlines: on real time, or test mode's virtual clock. */
  deadlines: DeadlineSource;
  /** Runs built-in upstreams' delays: real timers, or test mode's virtual clock. */
  scheduler: Scheduler;
  /** Told when a built-in upstream starts waiting on the clock (test mode's runner skips time then). */
  waits?: WaitTracker;
  /** Hears every request just before it goes upstream, exactly as it goes (the scenario runner). */
  onForward?: (forwarded: Forwarded) => void;
  /** Hears every upstream failure (not a client leaving), with its cause: logs and metrics. */
  onFailure?: (failure: FailureReport) => void;
  /** Where a request that cannot be forwarded for the gateway's own fault is reported. */
  log?: (message: string, fields: Record<string, unknown>) => void;
}

/** A request as gatehouse sends it upstream. */
export interface Forwarded {
  readonly requestId: string;
  readonly upstream: string;
  readonly method: string;
  readonly pathAndQuery: string;
  readonly headers: Headers;
}

/** What the proxy reports when a request ends; the pipeline adds the time and the final cost. */
export interface Reported extends Omit<RequestOutcome, "endedAt" | "cost" | "billed"> {
  /** The cost read from the response, for a route with `costFrom`; undefined when not read. */
  measured: number | undefined;
}

export type Finish = (o: Reported) => void;

export async function forward(
  ctx: RequestContext,
  req: Request,
  query: string,
  clientIp: string | null,
  deps: ProxyDeps,
  finish: Finish,
): Promise<Response | Refusal> {
  const target = ctx.upstream!;
  if (target.unavailableCredential !== null) {
    // The operator learns which credential; the client only that the upstream is out of reach.
    deps.log?.("upstream credential unavailable; answered 502", {
      requestId: ctx.requestId,
      upstream: target.name,
      credential: target.unavailableCredential,
    });
    return new Refusal("bad_gateway", "The upstream could not be reached.");
  }
  const fields = upstreamRequestFields(
    ctx.headers,
    {
      tenantId: ctx.tenant!.id,
      keyId: ctx.key!.id,
      requestId: ctx.requestId,
      clientIp,
      ...(target.tenantContext ? { context: tenantContext(ctx) } : {}),
    },
    target.headers,
  );
  const f = new Forwarding(ctx, req, query ? `${ctx.path}?${query}` : ctx.path, fields, deps, finish);
  if (deps.onForward) {
    deps.onForward({
      requestId: ctx.requestId,
      upstream: target.name,
      method: ctx.method,
      pathAndQuery: f.pathAndQuery,
      headers: toHeaders(fields),
    });
  }
  const call = target.mock ? mockCall(target.mock, f, deps) : deps.client.send(f);
  f.call = call;
  // The Forwarding is the listener (handleEvent): no closure per request. No `{ once: true }`: an
  // abort event fires at most once anyway, and the options object doubles the cost.
  req.signal.addEventListener("abort", f);
  let answer: UpstreamAnswer;
  try {
    answer = await call.answer;
  } catch (err) {
    return f.failed(err, "headers");
  }
  const upstreamMs = deps.now() - f.started;
  const meter = ctx.route?.costFrom ?? null;
  const fromHeader =
    meter?.kind === "header" ? costFromHeader(fieldValue(answer.fields, meter.name)) : undefined;

  const body = answer.body;
  if (body === null || body.complete !== null || (body.length !== null && body.length <= READ_WHOLE_LIMIT)) {
    let payload: Uint8Array | null = null;
    let measured = fromHeader;
    try {
      payload = body === null ? null : (body.complete ?? (await body.read()));
      if (meter?.kind === "json" && payload && payload.byteLength <= meter.maxBytes) {
        measured = costFromJson(payload, fieldValue(answer.fields, "content-encoding"), meter);
      }
    } catch (err) {
      return f.failed(err, "body");
    }
    req.signal.removeEventListener("abort", f);
    finish({
      status: answer.status,
      outcome: "ok",
      bytesIn: f.bytesIn,
      bytesOut: payload?.byteLength ?? 0,
      upstreamMs,
      measured,
    });
    // Bun sets the length from the payload; a HEAD answer keeps the upstream's.
    return f.respond(answer, payload, payload !== null);
  }

  const capture = meter?.kind === "json" ? new BodyCapture(meter.maxBytes) : null;
  const relayed = body.stream(
    (how, bytesOut, err) => {
      req.signal.removeEventListener("abort", f);
      if (how === "idle_timeout" || how === "upstream_error") f.report("body", err, how === "idle_timeout");
      const outcome =
        how === "complete" ? "ok" : how === "client_aborted" ? "client_aborted" : "upstream_error";
      let measured = fromHeader;
      if (capture && meter?.kind === "json" && how === "complete") {
        const bytes = capture.bytes();
        measured = bytes && costFromJson(bytes, fieldValue(answer.fields, "content-encoding"), meter);
      }
      finish({ status: answer.status, outcome, bytesIn: f.bytesIn, bytesOut, upstreamMs, measured });
    },
    capture ? (chunk) => capture.add(chunk) : undefined,
  );
  return f.respond(answer, relayed, false);
}

/**
 * One request on its way upstream: what the client is asked to send (an UpstreamRequest), the
 * listener for the client leaving, and what a failure is answered with. One object per request
 * instead of a closure for each of these.
 */
class Forwarding implements UpstreamRequest {
  readonly target: UpstreamTarget;
  readonly method: string;
  readonly body: ReadableStream<Uint8Array> | null;
  readonly declaredLength: number | null;
  readonly maxBodyBytes: number;
  readonly started: number;
  /** Declared, or counted as a body without a declared length streams up. */
  bytesIn: number;
  call: UpstreamCall | null = null;

  constructor(
    private readonly ctx: RequestContext,
    private readonly req: Request,
    readonly pathAndQuery: string,
    readonly fields: readonly string[],
    private readonly deps: ProxyDeps,
    private readonly finish: Finish,
  ) {
    this.target = ctx.upstream!;
    this.method = ctx.method;
    this.body = req.body;
    const declared = req.headers.get("content-length");
    this.bytesIn = Number(declared ?? 0) || 0;
    this.declaredLength = declared === null ? null : this.bytesIn;
    this.maxBodyBytes = deps.maxBodyBytes;
    this.started = deps.now();
  }

  onBodyBytes(n: number): void {
    this.bytesIn = n;
  }

  /** The client has gone (req.signal's abort event). */
  handleEvent(): void {
    this.call?.abort();
  }

  report(stage: FailureStage, err: unknown, timedOut = err instanceof UpstreamTimeout): void {
    this.deps.onFailure?.({
      upstream: this.target.name,
      cause: classifyUpstreamFailure(err, stage, timedOut),
      requestId: this.ctx.requestId,
      code: errorCode(err),
    });
  }

  /** Nothing has been sent to the client yet, so every failure can still be a proper answer. */
  failed(err: unknown, stage: FailureStage): Response | Refusal {
    const { req, deps } = this;
    req.signal.removeEventListener("abort", this);
    if (err instanceof BodyTooLarge) {
      return new Refusal("payload_too_large", `The request body is larger than ${deps.maxBodyBytes} bytes.`);
    }
    if (err instanceof CallAborted || req.signal.aborted) {
      this.finish({
        status: 499,
        outcome: "client_aborted",
        bytesIn: this.bytesIn,
        bytesOut: 0,
        upstreamMs: deps.now() - this.started,
        measured: undefined,
      });
      return new Response(null, { status: 499 });
    }
    this.report(stage, err);
    if (err instanceof UpstreamTimeout)
      return new Refusal("gateway_timeout", "The upstream did not answer in time.");
    return new Refusal("bad_gateway", "The upstream could not be reached.");
  }

  respond(
    answer: UpstreamAnswer,
    payload: Uint8Array | ReadableStream<Uint8Array> | null,
    dropLength: boolean,
  ): Response {
    return new Response(payload, {
      status: answer.status,
      statusText: answer.statusText,
      headers: clientResponseFields({
        fields: answer.fields,
        connectionTokens: answer.connectionTokens,
        upstreamBase: this.target.baseUrl,
        pathAndQuery: this.pathAndQuery,
        own: this.ctx.responseHeaders,
        requestId: this.ctx.requestId,
        dropLength,
      }),
    });
  }
}

/** A header's value as a Headers object would give it: repeated ones joined with ", ". */
function fieldValue(fields: readonly string[], name: string): string | null {
  let value: string | null = null;
  for (let i = 0; i < fields.length; i += 2) {
    if (fields[i] === name) value = value === null ? fields[i + 1]! : `${value}, ${fields[i + 1]}`;
  }
  return value;
}
