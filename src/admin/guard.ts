/**
 * The one guard in front of the control API, run in onRequest (before routing) so unknown paths get
 * the same answers as real ones. In order:
 * 1. A request without a usable Host is refused (400): it names no target to judge.
 * 2. GET /healthz passes: it says only "ok", and probes send whatever Host they like.
 * 3. Host: a tokenless listener (and any listener with server.adminHosts) serves only requests
 *    addressed to its own names, so a page that re-points its host name at 127.0.0.1 (DNS rebinding)
 *    is refused (421).
 * 4. A request that may change something, sent by a page of another site, is refused (403), token or
 *    not: browsers can send those without asking, and the dashboard signs in with a cookie.
 * 5. The token, or an operator's browser session (src/ui): its cookie counts only together with the
 *    session's CSRF token on every change. The dashboard's pages and assets hold no data and load
 *    without either. The right token is always served at once: a wrong one never locks it out. Wrong
 *    guesses are counted per address; past the limit that address's wrong guesses get 429 with
 *    Retry-After. A 429 still tells a guesser the guess was wrong, so it only makes guessing loud; what
 *    makes it hopeless is the token itself (16+ characters, sample values refused at start-up).
 * 6. The body: JSON only (415) and small (413), before anything reads it.
 */
import type { Clock } from "../lib/clock.ts";
import { tokenMatches } from "./auth.ts";
import { clientIp } from "./client-ip.ts";
import { isCrossSiteWrite } from "./cross-site.ts";
import { hostMatcher, requestHost } from "./host-check.ts";
import { hasNonJsonBody } from "./json-body.ts";
import { AdminProblem, problemResponse } from "./problem.ts";
import { requestIdOf } from "./request-id.ts";
import { AuthFailureThrottle, type ThrottleOptions } from "./throttle.ts";

/** Admin request bodies are small; a larger declared length is refused before the body is read. */
export const MAX_ADMIN_BODY = 256 * 1024;

const unauthorized = () =>
  new AdminProblem(
    401,
    "unauthorized",
    "The control API needs Authorization: Bearer <admin token>.",
    {},
    { "www-authenticate": 'Bearer realm="gatehouse-admin"' },
  );

/**
 * The refusals below are the same whatever the path and never echo what was sent. A foreign Host gets
 * 421 Misdirected Request rather than 403: the listener is not the server for that name (RFC 9110
 * §15.5.20), which is exactly the case, while 403 would say the resource is there but not for this
 * caller. A Host that is missing, repeated or malformed is a bad request (RFC 9112 §3.2).
 */
const badHost = () => new AdminProblem(400, "bad_request", "The request needs one well-formed Host header.");
const misdirected = () =>
  new AdminProblem(421, "misdirected_request", "This listener does not serve that host name.");
const crossSite = () =>
  new AdminProblem(403, "cross_site_request", "The control API takes no changes from other sites' pages.");
const notJson = () =>
  new AdminProblem(415, "unsupported_media_type", "Request bodies must be sent as application/json.");

const csrfMissing = () =>
  new AdminProblem(
    403,
    "csrf_token_required",
    "A change made with a session cookie needs the session's X-CSRF-Token header.",
  );

/** The browser sessions the dashboard signs operators in with (src/ui/dashboard/sessions.ts). */
export interface GuardSessions {
  /**
   * "ok": a live operator session, with its CSRF token if the request may change something; "csrf":
   * a live session, but a change without its token; "none": no live session.
   */
  check(request: Request): "ok" | "csrf" | "none";
  /** Pages and assets anyone may load: they hold no data. */
  isPublic(method: string, pathname: string): boolean;
}

export interface GuardOptions {
  /** Null means no token is configured, which start-up only allows on loopback. */
  token: string | null;
  /** server.adminHosts: more names the listener answers to besides its loopback names. */
  hosts?: readonly string[];
  clock: Clock;
  throttle?: ThrottleOptions;
  sessions?: GuardSessions;
}

export function createGuard({ token, hosts = [], clock, throttle: throttleOptions, sessions }: GuardOptions) {
  const throttle = new AuthFailureThrottle(clock, throttleOptions);
  const isOwnHost = hostMatcher(hosts);
  // A token already keeps strangers out; the Host check then applies only when names are listed.
  const checkHost = token === null || hosts.length > 0;
  return ({ request }: { request: Request }): Response | undefined => {
    const refusal = refuse(request);
    return refusal && problemResponse(refusal, requestIdOf(request));
  };

  function refuse(request: Request): AdminProblem | undefined {
    const url = URL.parse(request.url);
    const host = url && requestHost(request, url);
    if (!url || !host) return badHost();
    if (request.method === "GET" && url.pathname === "/healthz") return;
    if (checkHost && !isOwnHost(host)) return misdirected();
    if (isCrossSiteWrite(request, url)) return crossSite();
    if (sessions?.isPublic(request.method, url.pathname)) return;
    if (token !== null && !tokenMatches(token, request.headers.get("authorization"))) {
      const session = sessions?.check(request) ?? "none";
      if (session === "csrf") return csrfMissing();
      if (session === "ok") return bodyProblem(request);
      const client = clientIp(request);
      const wait = throttle.retryAfterMs(client);
      if (wait > 0) {
        return new AdminProblem(
          429,
          "too_many_attempts",
          "Too many requests with a wrong admin token; try again later.",
          {},
          { "retry-after": String(Math.ceil(wait / 1000)) },
        );
      }
      throttle.recordFailure(client);
      return unauthorized();
    }
    return bodyProblem(request);
  }

  function bodyProblem(request: Request): AdminProblem | undefined {
    if (Number(request.headers.get("content-length") ?? 0) > MAX_ADMIN_BODY) {
      return new AdminProblem(
        413,
        "payload_too_large",
        `Request bodies are limited to ${MAX_ADMIN_BODY} bytes.`,
      );
    }
    if (hasNonJsonBody(request)) return notJson();
    return undefined;
  }
}
