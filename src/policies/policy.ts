import type { Refusal, RefusalCode } from "../gateway/refusal.ts";
import type { CompiledRoute, KeyView, Snapshot, TenantView } from "../gateway/snapshot.ts";
import type { UpstreamTarget } from "../gateway/upstream.ts";
import type { RequestIdentity } from "../identity/request.ts";

/** How a request ended, reported to whoever registered with `onDone`. */
export interface RequestOutcome {
  status: number;
  /** "ok", "rejected:<refusal code>", "upstream_error", "client_aborted" */
  outcome: string;
  bytesIn: number;
  bytesOut: number;
  /** Epoch ms when the response finished or the client went away. */
  endedAt: number;
  /** Milliseconds spent waiting for the upstream's response headers, if it was called. */
  upstreamMs: number | null;
  /**
   * Cost units the request finally counts in rate limits: the route's cost, or the one measured from
   * the response (gateway/final-cost.ts); 0 when it was refused.
   */
  cost: number;
  /** Cost units quotas and the usage row count: `cost`, or 0 for a failure the plan does not bill. */
  billed: number;
}

/** What the policy chain knows about one request. Policies fill in what they decide. */
export interface RequestContext {
  readonly requestId: string;
  readonly method: string;
  /** The one canonical path used for every decision and forwarded upstream. */
  readonly path: string;
  /**
   * The query string as the client sent it, without `?`: rules' query predicates and tenant-scoped
   * routes read it (what is forwarded has key parameters removed).
   */
  readonly query: string;
  /** Path segments of `path`, for matching. */
  readonly segments: readonly string[];
  /** `segments` percent-decoded and case-folded: every spelling an upstream may read as them. */
  readonly lenientSegments: readonly string[];
  /** Epoch ms (from the injected clock) when the request arrived. */
  readonly startedAt: number;
  readonly headers: Headers;
  /** The configuration in force when the request arrived; a reload mid-request does not change it. */
  readonly snapshot: Snapshot;
  tenant?: TenantView;
  key?: KeyView;
  /** Which tenant the request names and how its credential proved one (see identity/). */
  identity?: RequestIdentity;
  route?: CompiledRoute;
  /** Where the request goes, after the tenant's upstream overrides. */
  upstream?: UpstreamTarget;
  /**
   * Cost units counted against limits and quotas at admission. A route that measures its cost from
   * the response replaces it when the response ends (RequestOutcome.cost).
   */
  cost: number;
  /** Codes of shadow policies that would have refused this request (null for none, the usual case). */
  wouldRefuse: RefusalCode[] | null;
  /**
   * Headers policies add to the response, whatever it turns out to be; names in lower case. A Map,
   * not Headers: every native Headers set and iteration costs far more than a Map's, and this is
   * filled and read on every request.
   */
  readonly responseHeaders: Map<string, string>;
  /** Registers work to run once when the response has finished or the client has gone. */
  onDone(fn: (outcome: RequestOutcome) => void): void;
}

/** Records that a shadow policy would have refused the request with `code` (once per code). */
export function recordWouldRefuse(ctx: RequestContext, code: RefusalCode): void {
  if (ctx.wouldRefuse === null) ctx.wouldRefuse = [code];
  else if (!ctx.wouldRefuse.includes(code)) ctx.wouldRefuse.push(code);
}

/**
 * A policy is a small framework-free step of the chain. It returns a refusal to stop the request,
 * or nothing to let it through. A policy never imports another policy or Elysia.
 */
export interface Policy {
  readonly name: string;
  check(ctx: RequestContext): Refusal | undefined;
}

/**
 * A step that may have to wait: authentication, because verifying a token's signature is
 * asynchronous in WebCrypto. It answers synchronously whenever it can (API keys always do).
 */
export interface WaitingPolicy {
  readonly name: string;
  check(ctx: RequestContext): Refusal | undefined | Promise<Refusal | undefined>;
}
