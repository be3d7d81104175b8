/**
 * Forwards an admitted request to its upstream and relays the answer. Never follows redirects; a
 * refused connection is 502, no response headers in time is 504.
 *
 * Request bodies always stream. A response that declares a small Content-Length is read whole
 * (bounded by READ_WHOLE_LIMIT) and then sent: in Bun that is as fast as handing the upstream's
 * stream straight through and several times faster than relaying it chunk by chunk in JavaScript,
 * and it tells the usage row exactly when the body ended. Larger or chunked responses stream
 * through a relay that counts bytes and enforces the idle timeout.
 *
 * A route that measures its cost (`costFrom`) reads it from a response header, or from a copy of the
 * JSON body taken as it passes (measure-cost.ts); either way the answer is never held back for it.
 */
import { tenantContext } from "../identity/context-header.ts";
import type { Cancel, Scheduler } from "../lib/scheduler.ts";
import type { RequestContext, RequestOutcome } from "../policies/policy.ts";
import { BodyTooLarge, limitBody, relayBody } from "./body.ts";
import { clientResponseHeaders, upstreamRequestHeaders } from "./headers.ts";
import { BodyCapture, costFromHeader, costFromJson } from "./measure-cost.ts";
import { answerMock, type WaitTracker } from "./mock-upstream.ts";
import { Refusal } from "./refusal.ts";
import { classifyUpstreamFailure, errorCode, type FailureStage } from "./upstream-failure.ts";
import type { FailureReport } from "./upstream-failure-log.ts";

const READ_WHOLE_LIMIT = 256 * 1024;

export interface ProxyDeps {
  fetch: typeof fetch;
  maxBodyBytes: number;
  now: () => number;
  /** Runs the upstream deadlines: real timers, or test mode's virtual clock. */
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
  const headers = upstreamRequestHeaders(
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
  const declaredIn = req.headers.get("content-length");
  let bytesIn = Number(declaredIn ?? 0) || 0;
  let body: ReadableStream<Uint8Array> | null = req.body;
  if (body && declaredIn === null) {
    body = limitBody(body, deps.maxBodyBytes, (n) => {
      bytesIn = n;
    });
  }
  const pathAndQuery = query ? `${ctx.path}?${query}` : ctx.path;
  deps.onForward?.({
    requestId: ctx.requestId,
    upstream: target.name,
    method: ctx.method,
    pathAndQuery,
    headers,
  });

  const started = deps.now();
  const controller = new AbortController();
  let timedOut = false;
  // A timer per request: one shared coarse timer (a Set scanned every 50 ms) saved about 0.4 µs a
  // request in profiles but raised p99 latency by 2-4 ms in every benchmark round.
  const abortAfter = (ms: number): Cancel =>
    deps.scheduler.after(ms, () => {
      timedOut = true;
      controller.abort();
    });
  let cancelTimer = abortAfter(target.timeoutMs);
  const onClientGone = () => controller.abort();
  // No `{ once: true }`: an abort event fires at most once anyway, and the options object doubles
  // the cost of adding the listener.
  req.signal.addEventListener("abort", onClientGone);
  const settle = () => {
    cancelTimer();
    req.signal.removeEventListener("abort", onClientGone);
  };
  const report = (stage: FailureStage, err: unknown) =>
    deps.onFailure?.({
      upstream: target.name,
      cause: classifyUpstreamFailure(err, stage, timedOut),
      requestId: ctx.requestId,
      code: errorCode(err),
    });
  // Nothing has been sent to the client yet, so every failure can still be a proper answer.
  const failed = (err: unknown, stage: FailureStage): Response | Refusal => {
    settle();
    if (err instanceof BodyTooLarge || (err as { cause?: unknown })?.cause instanceof BodyTooLarge) {
      return new Refusal("payload_too_large", `The request body is larger than ${deps.maxBodyBytes} bytes.`);
    }
    if (req.signal.aborted) {
      finish({
        status: 499,
        outcome: "client_aborted",
        bytesIn,
        bytesOut: 0,
        upstreamMs: deps.now() - started,
        measured: undefined,
      });
      return new Response(null, { status: 499 });
    }
    report(stage, err);
    if (timedOut) return new Refusal("gateway_timeout", "The upstream did not answer in time.");
    return new Refusal("bad_gateway", "The upstream could not be reached.");
  };

  let res: Response;
  try {
    res = target.mock
      ? await answerMock(target.mock, {
          upstream: target.name,
          method: ctx.method,
          pathAndQuery,
          headers,
          body,
          signal: controller.signal,
          scheduler: deps.scheduler,
          waits: deps.waits,
        })
      : await deps.fetch(target.baseUrl + pathAndQuery, {
          method: ctx.method,
          headers,
          body,
          redirect: "manual",
          signal: controller.signal,
          decompress: false,
          duplex: "half",
        } as RequestInit);
  } catch (err) {
    return failed(err, "headers");
  }
  const upstreamMs = deps.now() - started;
  cancelTimer();

  const out = clientResponseHeaders(res.headers, target.baseUrl, pathAndQuery);
  for (const [k, v] of ctx.responseHeaders) out.set(k, v);
  out.set("x-request-id", ctx.requestId);
  const init = { status: res.status, statusText: res.statusText, headers: out };
  const meter = ctx.route?.costFrom ?? null;
  const fromHeader = meter?.kind === "header" ? costFromHeader(res.headers.get(meter.name)) : undefined;

  const declared = res.headers.get("content-length");
  if (!res.body || (declared !== null && Number(declared) <= READ_WHOLE_LIMIT)) {
    cancelTimer = abortAfter(target.idleTimeoutMs);
    let payload: Blob | null = null;
    let measured = fromHeader;
    try {
      payload = res.body ? await res.blob() : null;
      if (meter?.kind === "json" && payload && payload.size <= meter.maxBytes) {
        measured = costFromJson(await payload.bytes(), res.headers.get("content-encoding"), meter);
      }
    } catch (err) {
      return failed(err, "body");
    }
    settle();
    finish({
      status: res.status,
      outcome: "ok",
      bytesIn,
      bytesOut: payload?.size ?? 0,
      upstreamMs,
      measured,
    });
    // Bun sets the length from the payload; a HEAD answer keeps the upstream's.
    if (payload) out.delete("content-length");
    return new Response(payload, init);
  }

  const capture = meter?.kind === "json" ? new BodyCapture(meter.maxBytes) : null;
  const relayed = relayBody(
    res.body,
    target.idleTimeoutMs,
    deps.scheduler,
    (how, bytesOut, err) => {
      req.signal.removeEventListener("abort", onClientGone);
      if (how === "idle_timeout" || how === "upstream_error") {
        timedOut = how === "idle_timeout";
        report("body", err);
      }
      const outcome =
        how === "complete" ? "ok" : how === "client_aborted" ? "client_aborted" : "upstream_error";
      let measured = fromHeader;
      if (capture && meter?.kind === "json" && how === "complete") {
        const body = capture.bytes();
        measured = body && costFromJson(body, res.headers.get("content-encoding"), meter);
      }
      finish({ status: res.status, outcome, bytesIn, bytesOut, upstreamMs, measured });
    },
    () => controller.abort(),
    capture ? (chunk) => capture.add(chunk) : undefined,
  );
  return new Response(relayed, init);
}
