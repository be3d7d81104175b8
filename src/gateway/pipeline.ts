/**
 * One request, one direction: method → canonical path → tenant named by host or path prefix (the
 * prefix removed) → policy chain (auth → route → tenant scope → rules → body size → limits) → proxy
 * → response. Refusals become problem+json here and nowhere else, and whoever
 * observes requests (usage rows, metrics) hears about each one exactly once, when it has ended.
 */

import { locateTenant } from "../identity/namers.ts";
import type { Clock } from "../lib/clock.ts";
import { requestIdFor } from "../lib/request-id.ts";
import { presentedKey } from "../policies/auth/index.ts";
import type { RequestContext, RequestOutcome, WaitingPolicy } from "../policies/policy.ts";
import { canonicalize } from "./canonical-path.ts";
import { finalCost } from "./final-cost.ts";
import { ALLOW_HINT, NEVER_FORWARDED } from "./http-methods.ts";
import { problemResponse } from "./problem.ts";
import { forward, type ProxyDeps, type Reported } from "./proxy.ts";
import { forwardedQuery } from "./query.ts";
import { Refusal } from "./refusal.ts";
import type { Snapshot } from "./snapshot.ts";

export interface GatewayDeps {
  clock: Clock;
  snapshot: () => Snapshot;
  policies: readonly WaitingPolicy[];
  proxy: ProxyDeps;
  /** Called once per request when its response has finished or the client has gone. */
  observe?: (ctx: RequestContext, outcome: RequestOutcome) => void;
  log?: (message: string, fields: Record<string, unknown>) => void;
}

export type Handler = (req: Request, clientIp: string | null) => Promise<Response>;

const upstreamFailures = new Set(["bad_gateway", "gateway_timeout"]);

/**
 * Never forwarded, whatever the path or key: a TRACE is echoed back by the upstream with the headers
 * it received, the injected credential among them, and a CONNECT asks for a tunnel, not a resource.
 * The answer is the same for every path, so it comes before the path and the key are looked at. It
 * has no Allow header: which methods a path takes depends on the tenant's rules and the upstream,
 * which gatehouse does not reveal before authentication (nor know), and a guessed list would be wrong.
 */
const neverForwarded = new Set(NEVER_FORWARDED);

export function createGateway(deps: GatewayDeps): Handler {
  const { clock } = deps;
  return async function handle(req, clientIp) {
    const canonical = canonicalize(req.url);
    const snapshot = deps.snapshot();
    // A tenant named by the Host or a path prefix, read from the canonical path (prefix removed).
    const located =
      canonical.ok && snapshot.identity.namers.length > 0
        ? locateTenant(snapshot.identity.namers, req.headers, canonical)
        : null;
    const where =
      located instanceof Refusal || located === null ? (canonical.ok ? canonical : null) : located;
    const done: ((o: RequestOutcome) => void)[] = [];
    let finished = false;
    const ctx: RequestContext = {
      requestId: requestIdFor(req.headers),
      method: req.method,
      path: where ? where.path : "",
      segments: where ? where.segments : [],
      lenientSegments: where ? where.lenientSegments : [],
      query: canonical.ok ? canonical.query : "",
      startedAt: clock.now(),
      headers: req.headers,
      snapshot,
      cost: 1,
      wouldRefuse: null,
      responseHeaders: new Map(),
      onDone: (fn) => done.push(fn),
    };

    const complete = (o: Reported) => {
      if (finished) return;
      finished = true;
      const outcome: RequestOutcome = {
        status: o.status,
        outcome: o.outcome,
        bytesIn: o.bytesIn,
        bytesOut: o.bytesOut,
        endedAt: clock.now(),
        upstreamMs: o.upstreamMs,
        cost: 0,
        billed: 0,
      };
      finalCost(ctx, o, outcome);
      for (const fn of done) {
        try {
          fn(outcome);
        } catch (err) {
          deps.log?.("request completion hook failed", { requestId: ctx.requestId, error: String(err) });
        }
      }
      deps.observe?.(ctx, outcome);
    };

    const refuse = (r: Refusal) => {
      const outcome = upstreamFailures.has(r.code) ? "upstream_error" : `rejected:${r.code}`;
      complete({ status: r.status, outcome, bytesIn: 0, bytesOut: 0, upstreamMs: null, measured: undefined });
      // A refused request's body is never read: close the connection rather than leave the client
      // uploading into it (and a graceful stop waiting on it).
      if (req.body !== null) ctx.responseHeaders.set("connection", "close");
      return problemResponse(r, ctx.requestId, ctx.responseHeaders);
    };

    try {
      if (neverForwarded.has(req.method))
        return refuse(
          new Refusal("method_not_allowed", `${req.method} requests are not forwarded.`, {
            Allow: ALLOW_HINT,
          }),
        );
      if (!canonical.ok)
        return refuse(new Refusal("bad_request", `The request path was refused: ${canonical.reason}.`));
      if (located instanceof Refusal) return refuse(located);
      if (located) ctx.identity = { named: located.named };
      for (const policy of deps.policies) {
        let refusal = policy.check(ctx);
        if (refusal instanceof Promise) refusal = await refusal;
        if (refusal) return refuse(refusal);
      }
      const query = forwardedQuery(
        canonical.query,
        canonical.query ? (presentedKey(req.headers) ?? null) : null,
      );
      const result = await forward(ctx, req, query, clientIp, deps.proxy, complete);
      return result instanceof Refusal ? refuse(result) : result;
    } catch (err) {
      deps.log?.("request failed", {
        requestId: ctx.requestId,
        error: err instanceof Error ? err.stack : String(err),
      });
      return refuse(new Refusal("internal_error", "The gateway failed to handle this request."));
    }
  };
}
