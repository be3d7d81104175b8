/**
 * The usage row: what one request leaves behind for billing and analytics. Built from the request
 * context and its outcome by a pure function, so what a row may hold is decided in one place.
 */
import type { Log } from "../lib/log.ts";
import type { RequestContext, RequestOutcome } from "../policies/policy.ts";

export interface UsageRow {
  /** Epoch ms when the request arrived (ctx.startedAt): the same instant limits and quotas judged. */
  ts: number;
  requestId: string;
  /** Null when no key was recognised (e.g. 401). */
  tenantId: string | null;
  keyId: string | null;
  /** The matched route's `match` text, null when no route was chosen. */
  route: string | null;
  method: string;
  /** The canonical path, never the query string; "" when the path had no canonical form (400). */
  path: string;
  status: number;
  /** "ok", "rejected:<code>", "upstream_error" or "client_aborted". */
  outcome: string;
  /**
   * Cost units billed: what quotas counted, the measured cost for a route with `costFrom`. 0 for a
   * refused request, which costs nothing, and for a failure the plan does not bill.
   */
  cost: number;
  /**
   * Codes of the shadow rules, limits and quotas that would have refused this request, which the
   * enforced ones let through: "forbidden", "rate_limited", "quota_exhausted", comma-separated.
   */
  wouldRefuse: string | null;
  bytesIn: number;
  bytesOut: number;
  /** From arrival to the last response byte (or the client leaving). */
  latencyMs: number;
  /** Time to the upstream's response headers; null when the upstream was not called. */
  upstreamMs: number | null;
}

/** A request counts as an error when its status is 400 or above or it did not end "ok". */
export const isError = (status: number, outcome: string): boolean => status >= 400 || outcome !== "ok";

const MAX_METHOD = 32;
const REDACTED = "[redacted]";

export function usageRow(ctx: RequestContext, outcome: RequestOutcome): UsageRow {
  return {
    ts: ctx.startedAt,
    requestId: ctx.requestId,
    tenantId: ctx.tenant?.id ?? null,
    keyId: ctx.key?.id ?? null,
    route: ctx.route?.match ?? null,
    method: ctx.method.slice(0, MAX_METHOD),
    path: rowPath(ctx.path, ctx.headers),
    status: outcome.status,
    outcome: outcome.outcome,
    cost: count(outcome.billed),
    wouldRefuse: ctx.wouldRefuse === null ? null : ctx.wouldRefuse.join(","),
    bytesIn: count(outcome.bytesIn),
    bytesOut: count(outcome.bytesOut),
    latencyMs: Math.max(0, finite(outcome.endedAt - ctx.startedAt)),
    upstreamMs: outcome.upstreamMs === null ? null : Math.max(0, round3(finite(outcome.upstreamMs))),
  };
}

/**
 * The canonical path carries no query, but a client may still have pasted its key into the path;
 * the row must never hold a key, so the presented credentials are blanked out of it. Runs for every
 * request, so it reads with indexOf rather than regular expressions.
 */
export function rowPath(path: string, headers: Headers): string {
  const out = redact(cutAt(cutAt(path, "?"), "#"), bearerToken(headers.get("authorization")));
  return redact(out, headers.get("x-api-key")?.trim());
}

function redact(path: string, secret: string | undefined): string {
  // Very short values would blank ordinary path text; keys are far longer than this.
  if (!secret || secret.length < 8 || !path.includes(secret)) return path;
  return path.split(secret).join(REDACTED);
}

function cutAt(s: string, ch: string): string {
  const at = s.indexOf(ch);
  return at < 0 ? s : s.slice(0, at);
}

/** The token of `Bearer <token>` (the scheme in any case), or undefined. */
function bearerToken(auth: string | null): string | undefined {
  if (auth === null) return undefined;
  let i = 0;
  while (isSpace(auth.charCodeAt(i))) i++;
  for (let k = 0; k < BEARER.length; k++) {
    // ASCII letters compare case-insensitively with the 0x20 bit set.
    if ((auth.charCodeAt(i + k) | 0x20) !== BEARER.charCodeAt(k)) return undefined;
  }
  let start = i + BEARER.length;
  if (!isSpace(auth.charCodeAt(start))) return undefined;
  while (isSpace(auth.charCodeAt(start))) start++;
  let end = start;
  while (end < auth.length && !isSpace(auth.charCodeAt(end))) end++;
  return end > start ? auth.slice(start, end) : undefined;
}

const BEARER = "bearer";
const isSpace = (c: number) => c === 32 || c === 9;

const finite = (n: number) => (Number.isFinite(n) ? n : 0);
const count = (n: number) => Math.max(0, Math.round(finite(n)));
const round3 = (n: number) => Math.round(n * 1000) / 1000;

/**
 * The data plane's observe hook for usage: builds the request's row and hands it to `record` (and
 * `onRow`, the access log); never throws, since the request has already been answered.
 */
export function rowObserver(
  record: (row: UsageRow) => void,
  onRow: ((row: UsageRow) => void) | undefined,
  log: Log,
): (ctx: RequestContext, outcome: RequestOutcome) => void {
  return (ctx, outcome) => {
    try {
      const row = usageRow(ctx, outcome);
      record(row);
      onRow?.(row);
    } catch (err) {
      log("error", "usage row could not be built", { requestId: ctx.requestId, error: String(err) });
    }
  };
}
