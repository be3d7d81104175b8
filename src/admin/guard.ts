/**
 * The one guard in front of the control API, run in onRequest (before routing) so unknown paths get
 * the same 401 as real ones. The right token is always served at once: a wrong one never locks it
 * out. Wrong tokens are counted per address; past the limit that address's wrong guesses get 429 with
 * Retry-After. A 429 still tells a guesser the guess was wrong, so it only makes guessing loud; what
 * makes it hopeless is the token itself (16+ characters, sample values refused at start-up). Then
 * the body size, before anything reads it.
 */
import type { Clock } from "../lib/clock.ts";
import { tokenMatches } from "./auth.ts";
import { clientIp } from "./client-ip.ts";
import { AdminProblem, problemResponse } from "./problem.ts";
import { AuthFailureThrottle, type ThrottleOptions } from "./throttle.ts";

/** Admin request bodies are small; a larger declared length is refused before the body is read. */
export const MAX_ADMIN_BODY = 256 * 1024;

export function unauthorizedProblem(): Response {
  return problemResponse(
    new AdminProblem(
      401,
      "unauthorized",
      "The control API needs Authorization: Bearer <admin token>.",
      {},
      {
        "www-authenticate": 'Bearer realm="gatehouse-admin"',
      },
    ),
  );
}

export function createGuard(token: string | null, clock: Clock, options?: ThrottleOptions) {
  const throttle = new AuthFailureThrottle(clock, options);
  return ({ request }: { request: Request }): Response | undefined => {
    if (request.method === "GET" && new URL(request.url).pathname === "/healthz") return;
    if (token !== null && !tokenMatches(token, request.headers.get("authorization"))) {
      const client = clientIp(request);
      const wait = throttle.retryAfterMs(client);
      if (wait > 0) {
        return problemResponse(
          new AdminProblem(
            429,
            "too_many_attempts",
            "Too many requests with a wrong admin token; try again later.",
            {},
            { "retry-after": String(Math.ceil(wait / 1000)) },
          ),
        );
      }
      throttle.recordFailure(client);
      return unauthorizedProblem();
    }
    if (Number(request.headers.get("content-length") ?? 0) > MAX_ADMIN_BODY) {
      return problemResponse(
        new AdminProblem(413, "payload_too_large", `Request bodies are limited to ${MAX_ADMIN_BODY} bytes.`),
      );
    }
    return undefined;
  };
}
