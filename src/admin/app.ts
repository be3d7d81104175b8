/**
 * The control API on the admin listener. One guard in front of every route but GET /healthz: a
 * request without the configured bearer token gets 401 before routing, so it learns nothing.
 */
import { Elysia } from "elysia";
import type { OpenDb } from "../db/open.ts";
import { problemType } from "../gateway/problem.ts";
import type { GatewayState } from "../gateway/state.ts";
import type { Clock } from "../lib/clock.ts";
import { tokenMatches } from "./auth.ts";

export interface AdminDeps {
  /** Null means no token is configured, which start-up only allows on loopback. */
  token: string | null;
  state: GatewayState;
  database: OpenDb;
  clock: Clock;
}

export function unauthorizedProblem(): Response {
  return new Response(
    JSON.stringify({
      type: problemType("unauthorized"),
      title: "Unauthorized",
      status: 401,
      detail: "The control API needs Authorization: Bearer <admin token>.",
    }),
    {
      status: 401,
      headers: {
        "content-type": "application/problem+json",
        "www-authenticate": 'Bearer realm="gatehouse-admin"',
      },
    },
  );
}

export function createAdminApp(deps: AdminDeps) {
  return new Elysia()
    .onRequest(({ request }) => {
      if (deps.token === null) return;
      if (request.method === "GET" && new URL(request.url).pathname === "/healthz") return;
      if (!tokenMatches(deps.token, request.headers.get("authorization"))) return unauthorizedProblem();
    })
    .get("/healthz", () => ({ status: "ok" }), { detail: { summary: "Liveness", tags: ["operations"] } });
}
