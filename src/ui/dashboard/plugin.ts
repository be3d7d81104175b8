/**
 * The operator dashboard on the admin listener, under /ui. Its pages are plain files (one HTML shell,
 * a script, a stylesheet) that read and change everything through the control API itself, with the
 * session cookie instead of the token; what the API has no route for lives under /ui/api: signing in
 * and out, the overview of all tenants, and a tenant's recent refusals. None of it is in the OpenAPI
 * document: it is this page's, not a client's.
 */
import { Elysia } from "elysia";
import { tokenMatches } from "../../admin/auth.ts";
import { AdminProblem, badRequest, problemResponse } from "../../admin/problem.ts";
import type { SharedQuotaCounts } from "../../admin/quota/service.ts";
import { requestIdOf } from "../../admin/request-id.ts";
import type { GatewayState } from "../../gateway/state.ts";
import type { Clock } from "../../lib/clock.ts";
import type { Metrics } from "../../metrics/index.ts";
import type { QuotaCounters } from "../../policies/limits/quota-counters.ts";
import type { UsageReads } from "../../usage/service.ts";
import { DASHBOARD_ASSETS } from "../assets/index.ts";
import { assetResponse, jsonResponse, pageResponse, shell } from "../http.ts";
import { rangeOf } from "../range.ts";
import { cameOverHttps, clearedCookie, OPERATOR_COOKIE, sessionCookie } from "../sessions/cookies.ts";
import type { Session, SessionStore } from "../sessions/store.ts";
import { overview } from "./overview.ts";
import type { OperatorSessions } from "./sessions.ts";

export interface DashboardDeps {
  token: string | null;
  store: SessionStore;
  sessions: OperatorSessions;
  state: GatewayState;
  clock: Clock;
  metrics: Metrics;
  startedAt: number;
  usage?: UsageReads;
  quotas?: QuotaCounters;
  sharedQuotas?: SharedQuotaCounts;
  /** Whether the tenant portal listens, so the page offers sign-in links. */
  portal: boolean;
}

const PAGE = shell("gatehouse", ["dashboard.js"], "ui.css", "/ui/assets");
const hidden = { detail: { hide: true } } as const;

export function dashboardPlugin(deps: DashboardDeps) {
  const info = (session: Session | null) => ({
    mode: deps.token === null ? "open" : "token",
    csrf: session?.csrf ?? null,
    idleUntil: session ? new Date(session.idleUntil).toISOString() : null,
    expiresAt: session ? new Date(session.expiresAt).toISOString() : null,
    now: new Date(deps.clock.now()).toISOString(),
    portal: deps.portal,
  });
  const page = () => pageResponse(PAGE);
  return (
    new Elysia({ name: "dashboard", normalize: false })
      .get("/ui", page, hidden)
      .get("/ui/sign-in", page, hidden)
      .get("/ui/tenants/:id", page, hidden)
      .get(
        "/ui/assets/:file",
        ({ params, request }) => {
          const asset = DASHBOARD_ASSETS.get(params.file);
          if (!asset)
            return problemResponse(new AdminProblem(404, "not_found", "No such file."), requestIdOf(request));
          return assetResponse(asset.path, asset.type);
        },
        hidden,
      )
      // Reached with the token or a live session (the guard saw to it).
      .get(
        "/ui/api/session",
        ({ request }) => jsonResponse(info(deps.sessions.current(request)?.session ?? null)),
        hidden,
      )
      .post(
        "/ui/api/session",
        ({ request }) => {
          if (deps.token === null) {
            throw new AdminProblem(
              409,
              "conflict",
              "No admin token is configured: the dashboard needs no sign-in.",
            );
          }
          // Only the token opens a session: a session cannot extend itself past its absolute end.
          if (!tokenMatches(deps.token, request.headers.get("authorization"))) {
            throw badRequest("Sign in with Authorization: Bearer <admin token>.");
          }
          const opened = deps.store.open("operator", { tokenTag: deps.sessions.tag! });
          const cookie = sessionCookie(
            OPERATOR_COOKIE,
            opened.id,
            opened.expiresAt - deps.clock.now(),
            cameOverHttps(request),
          );
          return jsonResponse(info(opened), 201, { "set-cookie": cookie });
        },
        hidden,
      )
      .delete(
        "/ui/api/session",
        ({ request }) => {
          const current = deps.sessions.current(request);
          if (current) deps.store.end(current.id);
          return new Response(null, {
            status: 204,
            headers: {
              "set-cookie": clearedCookie(OPERATOR_COOKIE, cameOverHttps(request)),
              "cache-control": "no-store",
            },
          });
        },
        hidden,
      )
      .get("/ui/api/overview", async () => jsonResponse(await overview(deps)), hidden)
      .get(
        "/ui/api/tenants/:id/refusals",
        async ({ params, request }) => {
          const { usage } = deps;
          if (!usage) return jsonResponse({ items: [] });
          if (!deps.state.snapshot.tenants.has(params.id)) {
            throw new AdminProblem(404, "not_found", `No tenant with id "${params.id}".`);
          }
          const range = rangeOf(new URL(request.url).searchParams, usage);
          if ("error" in range) throw badRequest(range.error);
          return jsonResponse({ items: await usage.refusals({ tenant: params.id, ...range, limit: 50 }) });
        },
        hidden,
      )
  );
}
