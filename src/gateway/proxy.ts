/**
 * Forwards an admitted request to its upstream and relays the answer, streaming both ways. Never
 * follows redirects; a refused connection is 502, no response headers in time is 504.
 */
import type { RequestContext, RequestOutcome } from "../policies/policy.ts";
import { BodyTooLarge, limitBody, relayBody } from "./body.ts";
import { echo } from "./echo.ts";
import { clientResponseHeaders, upstreamRequestHeaders } from "./headers.ts";
import { Refusal } from "./refusal.ts";

export interface ProxyDeps {
  fetch: typeof fetch;
  maxBodyBytes: number;
  now: () => number;
}

/** What the proxy learned, for the usage row; `end` fills in the rest when the body is done. */
export type Finish = (o: Omit<RequestOutcome, "endedAt">) => void;

export async function forward(
  ctx: RequestContext,
  req: Request,
  query: string,
  clientIp: string | null,
  deps: ProxyDeps,
  finish: Finish,
): Promise<Response | Refusal> {
  const target = ctx.upstream!;
  const headers = upstreamRequestHeaders(
    ctx.headers,
    { tenantId: ctx.tenant!.id, keyId: ctx.key!.id, requestId: ctx.requestId, clientIp },
    target.headers,
  );
  let bytesIn = Number(req.headers.get("content-length") ?? 0) || 0;
  let body: ReadableStream<Uint8Array> | null = req.body;
  if (body && !req.headers.has("content-length")) {
    body = limitBody(body, deps.maxBodyBytes, (n) => {
      bytesIn = n;
    });
  }
  const pathAndQuery = query ? `${ctx.path}?${query}` : ctx.path;

  const started = deps.now();
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, target.timeoutMs);
  const onClientGone = () => controller.abort();
  req.signal.addEventListener("abort", onClientGone, { once: true });

  let res: Response;
  try {
    res = target.mock
      ? await echo(target.name, ctx.method, pathAndQuery, headers, body)
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
    const upstreamMs = deps.now() - started;
    const base = { bytesIn, bytesOut: 0, upstreamMs };
    if (err instanceof BodyTooLarge || (err as { cause?: unknown })?.cause instanceof BodyTooLarge) {
      return new Refusal("payload_too_large", `The request body is larger than ${deps.maxBodyBytes} bytes.`);
    }
    if (req.signal.aborted) {
      finish({ ...base, status: 499, outcome: "client_aborted" });
      return new Response(null, { status: 499 });
    }
    if (timedOut) return new Refusal("gateway_timeout", "The upstream did not answer in time.");
    return new Refusal("bad_gateway", "The upstream could not be reached.");
  } finally {
    clearTimeout(timer);
  }
  const upstreamMs = deps.now() - started;

  const out = clientResponseHeaders(res.headers, target.baseUrl);
  for (const [k, v] of ctx.responseHeaders) out.set(k, v);
  out.set("x-request-id", ctx.requestId);

  if (!res.body) {
    req.signal.removeEventListener("abort", onClientGone);
    finish({ status: res.status, outcome: "ok", bytesIn, bytesOut: 0, upstreamMs });
    return new Response(null, { status: res.status, statusText: res.statusText, headers: out });
  }
  const relayed = relayBody(
    res.body,
    target.idleTimeoutMs,
    (how, bytesOut) => {
      req.signal.removeEventListener("abort", onClientGone);
      const outcome =
        how === "complete" ? "ok" : how === "client_aborted" ? "client_aborted" : "upstream_error";
      finish({ status: res.status, outcome, bytesIn, bytesOut, upstreamMs });
    },
    () => controller.abort(),
  );
  return new Response(relayed, { status: res.status, statusText: res.statusText, headers: out });
}
