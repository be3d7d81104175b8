/**
 * The tenant portal: its own listener (server.portal), where a tenant's user signs in with a one-time
 * link and then sees and manages only that tenant's keys, usage, quotas, limits and API docs. It
 * shares the services of the control API (keys, usage, quotas, policy) but none of its routes: every
 * answer here is about the session's tenant, whatever ids a request names.
 *
 * Every request: changes from other sites' pages are refused (Origin, Sec-Fetch-Site), bodies must be
 * small JSON, /api/ needs a live portal session of a tenant that exists and is enabled, and every
 * change needs the session's CSRF token.
 */
import { Type as T } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { AuditService } from "../../admin/audit/service.ts";
import { isCrossSiteWrite } from "../../admin/cross-site.ts";
import { hasNonJsonBody } from "../../admin/json-body.ts";
import { KeyName, RotateKeyBody } from "../../admin/keys/model.ts";
import { KeyService } from "../../admin/keys/service.ts";
import { PolicyService } from "../../admin/policy/service.ts";
import { AdminProblem, badRequest, notFound, problemResponse } from "../../admin/problem.ts";
import { QuotaService, type SharedQuotaCounts } from "../../admin/quota/service.ts";
import { requestIdOf } from "../../admin/request-id.ts";
import type { AdminStore, SharedCommit } from "../../admin/store.ts";
import type { OpenDb } from "../../db/open.ts";
import type { GatewayState } from "../../gateway/state.ts";
import type { Clock } from "../../lib/clock.ts";
import type { Log } from "../../lib/log.ts";
import type { QuotaCounters } from "../../policies/limits/quota-counters.ts";
import { GROUP_BYS, type GroupBy, UsageQueryError } from "../../usage/query.ts";
import type { UsageReads } from "../../usage/service.ts";
import { PORTAL_ASSETS } from "../assets/index.ts";
import { assetResponse, CSP, jsonResponse, pageResponse, shell } from "../http.ts";
import { rangeOf } from "../range.ts";
import {
  cameOverHttps,
  clearedCookie,
  PORTAL_COOKIE,
  readCookie,
  sessionCookie,
} from "../sessions/cookies.ts";
import { PortalLinks } from "../sessions/links.ts";
import { csrfMatches } from "../sessions/secrets.ts";
import { type Session, SessionStore } from "../sessions/store.ts";
import { portalDocument } from "./openapi.ts";
import { portalKey, portalPolicy, portalQuota } from "./views.ts";

export interface PortalDeps {
  state: GatewayState;
  database: OpenDb;
  clock: Clock;
  /** In cluster mode PostgreSQL's, so a tenant sees its usage on every node. */
  usage: UsageReads;
  quotas?: QuotaCounters;
  /** Cluster mode: the quota counts all nodes share in Redis, read before they are shown. */
  sharedQuotas?: SharedQuotaCounts;
  /** Cluster mode: key changes go through PostgreSQL, as the control API's do. */
  shared?: SharedCommit;
  log: Log;
  /** The data plane's address, for the docs' server. */
  dataUrl: string;
}

/** Portal bodies are a few fields. */
export const MAX_PORTAL_BODY = 16 * 1024;
export const CSRF_HEADER = "x-csrf-token";

const PAGE = shell("API portal", ["portal.js"], "ui.css", "/assets");
/** Scalar brings its own styles. */
const DOCS_PAGE = shell("API reference", ["scalar.js", "docs.js"], null, "/assets", "div");

const strict = { additionalProperties: false } as const;
const bodies = {
  signIn: TypeCompiler.Compile(T.Object({ token: T.String({ maxLength: 100 }) }, strict)),
  create: TypeCompiler.Compile(T.Object({ name: T.Optional(KeyName) }, strict)),
  patch: TypeCompiler.Compile(T.Object({ disabled: T.Boolean() }, strict)),
  rotate: TypeCompiler.Compile(RotateKeyBody),
};
const bodyWords = {
  signIn: '{"token": the part of the sign-in link after #}',
  create: '{"name": a label of at most 100 characters without control characters}, or {}',
  patch: '{"disabled": true or false}',
  rotate: '{"gracePeriod": a duration such as 0s, 1h or 24h}, or {}',
};

type Route = (req: PortalRequest) => Response | Promise<Response>;

interface PortalRequest {
  request: Request;
  url: URL;
  params: string[];
  session: (Session & { id: string }) | null;
  json(kind: keyof typeof bodies): Promise<Record<string, unknown>>;
}

export function createPortal(deps: PortalDeps): (request: Request) => Promise<Response> {
  const store: AdminStore = {
    database: deps.database,
    state: deps.state,
    clock: deps.clock,
    audit: new AuditService(deps.database, deps.clock),
    ...(deps.shared ? { shared: deps.shared } : {}),
  };
  const sessions = new SessionStore(deps.database, deps.clock);
  const links = new PortalLinks(deps.database, deps.clock);
  const keys = new KeyService(store);
  const policy = new PolicyService(store);
  const quotas = deps.quotas ? new QuotaService(store, deps.quotas, deps.sharedQuotas) : undefined;
  const actor = (tenant: string) => `portal:${tenant}`;

  const tenantOf = (pr: PortalRequest) => pr.session!.tenantId!;
  /** The session tenant's key with this id; another tenant's key is "not found", exactly like none. */
  const ownKey = (pr: PortalRequest, id: string) => {
    const missing = () => notFound(`No key with id "${id}".`);
    let key: ReturnType<KeyService["get"]>;
    try {
      key = keys.get(id);
    } catch {
      throw missing();
    }
    if (key.tenantId !== tenantOf(pr)) throw missing();
    return key;
  };
  /** The tenant's key, which it may change only if it was made through the API (the portal included). */
  const ownApiKey = (pr: PortalRequest, id: string) => {
    const key = ownKey(pr, id);
    if (key.source !== "api") {
      throw new AdminProblem(409, "conflict", "This key is managed by your provider; ask them to change it.");
    }
    return key;
  };
  const sessionInfo = (s: Session) => {
    const tenant = deps.state.snapshot.tenants.get(s.tenantId!)!;
    return {
      tenant: { id: tenant.id, name: tenant.name, plan: tenant.plan },
      csrf: s.csrf,
      idleUntil: new Date(s.idleUntil).toISOString(),
      expiresAt: new Date(s.expiresAt).toISOString(),
      now: new Date(deps.clock.now()).toISOString(),
      maxKeys: maxKeys(tenant.plan),
    };
  };
  const maxKeys = (plan: string) => deps.state.config.config.plans[plan]?.portal?.maxKeys ?? 0;

  const routes: [string, RegExp, Route, { public?: boolean }?][] = [
    ["GET", /^\/(sign-in)?$/, () => pageResponse(PAGE), { public: true }],
    ["GET", /^\/docs$/, () => pageResponse(DOCS_PAGE, CSP.docs), { public: true }],
    [
      "GET",
      /^\/assets\/([A-Za-z0-9.-]+)$/,
      ({ params }) => {
        const asset = PORTAL_ASSETS.get(params[0]!);
        if (!asset) throw notFound("No such file.");
        return assetResponse(asset.path, asset.type);
      },
      { public: true },
    ],
    [
      "POST",
      /^\/api\/session$/,
      async (pr) => {
        const { token } = (await pr.json("signIn")) as { token: string };
        const tenantId = links.redeem(token);
        const tenant = tenantId === null ? undefined : deps.state.snapshot.tenants.get(tenantId);
        if (!tenant || tenant.disabled) {
          throw new AdminProblem(
            401,
            "unauthorized",
            "This sign-in link is not valid: it was used already, has expired or was revoked. Ask for a new one.",
          );
        }
        const opened = sessions.open("portal", { tenantId: tenant.id });
        const cookie = sessionCookie(
          PORTAL_COOKIE,
          opened.id,
          opened.expiresAt - deps.clock.now(),
          cameOverHttps(pr.request),
        );
        return jsonResponse(sessionInfo(opened), 201, { "set-cookie": cookie });
      },
      { public: true },
    ],
    ["GET", /^\/api\/session$/, (pr) => jsonResponse(sessionInfo(pr.session!))],
    [
      "DELETE",
      /^\/api\/session$/,
      (pr) => {
        sessions.end(pr.session!.id);
        return new Response(null, {
          status: 204,
          headers: { "set-cookie": clearedCookie(PORTAL_COOKIE, cameOverHttps(pr.request)) },
        });
      },
    ],
    [
      "GET",
      /^\/api\/keys$/,
      (pr) => {
        const page = keys.listForTenant(tenantOf(pr), 1000, undefined);
        return jsonResponse({ items: page.items.map(portalKey) });
      },
    ],
    [
      "POST",
      /^\/api\/keys$/,
      async (pr) => {
        const body = (await pr.json("create")) as { name?: string };
        const tenant = deps.state.snapshot.tenants.get(tenantOf(pr))!;
        const max = maxKeys(tenant.plan);
        const held = keys.listForTenant(tenant.id, max + 1, undefined).items.length;
        if (held >= max) {
          throw new AdminProblem(
            409,
            "key_limit_reached",
            max === 0
              ? "Your plan does not let you create keys here; ask your provider."
              : `Your plan allows at most ${max} keys; revoke one first.`,
          );
        }
        const made = await keys.create(
          tenant.id,
          body.name === undefined ? {} : { name: body.name },
          actor(tenant.id),
        );
        return jsonResponse({ key: portalKey(made.key), secret: made.secret }, 201);
      },
    ],
    [
      "PATCH",
      /^\/api\/keys\/([^/]+)$/,
      async (pr) => {
        const key = ownApiKey(pr, pr.params[0]!);
        const { disabled } = (await pr.json("patch")) as { disabled: boolean };
        return jsonResponse(portalKey(await keys.update(key.id, { disabled }, actor(tenantOf(pr)))));
      },
    ],
    [
      "POST",
      /^\/api\/keys\/([^/]+)\/rotate$/,
      async (pr) => {
        const key = ownApiKey(pr, pr.params[0]!);
        const body = (await pr.json("rotate")) as { gracePeriod?: string };
        const made = await keys.rotate(key.id, body, actor(tenantOf(pr)));
        return jsonResponse({ key: portalKey(made.key), secret: made.secret });
      },
    ],
    [
      "POST",
      /^\/api\/keys\/([^/]+)\/end-grace$/,
      async (pr) =>
        jsonResponse(portalKey(await keys.endGrace(ownApiKey(pr, pr.params[0]!).id, actor(tenantOf(pr))))),
    ],
    [
      "DELETE",
      /^\/api\/keys\/([^/]+)$/,
      async (pr) => {
        await keys.revoke(ownApiKey(pr, pr.params[0]!).id, actor(tenantOf(pr)));
        return new Response(null, { status: 204 });
      },
    ],
    [
      "GET",
      /^\/api\/usage$/,
      async (pr) => {
        const query = pr.url.searchParams;
        onlyParams(query, ["from", "to", "groupBy"]);
        const groupBy = (query.get("groupBy") ?? "hour") as GroupBy;
        if (!GROUP_BYS.includes(groupBy)) throw badRequest(`groupBy must be one of ${GROUP_BYS.join(", ")}.`);
        const range = rangeOf(query, deps.usage);
        if ("error" in range) throw badRequest(range.error);
        return jsonResponse(await deps.usage.queryUsage({ tenant: tenantOf(pr), ...range, groupBy }));
      },
    ],
    [
      "GET",
      /^\/api\/refusals$/,
      async (pr) => {
        onlyParams(pr.url.searchParams, ["from", "to"]);
        const range = rangeOf(pr.url.searchParams, deps.usage);
        if ("error" in range) throw badRequest(range.error);
        return jsonResponse({
          items: await deps.usage.refusals({ tenant: tenantOf(pr), ...range, limit: 50 }),
        });
      },
    ],
    [
      "GET",
      /^\/api\/quota$/,
      async (pr) =>
        jsonResponse(
          quotas ? portalQuota(await quotas.ofTenant(tenantOf(pr))) : { tenant: tenantOf(pr), quotas: [] },
        ),
    ],
    ["GET", /^\/api\/policy$/, (pr) => jsonResponse(portalPolicy(policy.forTenant(tenantOf(pr))))],
    [
      "GET",
      /^\/api\/openapi\.json$/,
      (pr) => {
        const tenant = deps.state.snapshot.tenants.get(tenantOf(pr))!;
        return jsonResponse(portalDocument(deps.state.snapshot, tenant, deps.dataUrl));
      },
    ],
  ];

  async function handle(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (isCrossSiteWrite(request, url)) {
      throw new AdminProblem(
        403,
        "cross_site_request",
        "The portal takes no changes from other sites' pages.",
      );
    }
    let matched: { route: Route; params: string[]; public: boolean } | undefined;
    let pathKnown = false;
    // Paths are matched on their encoded form, so an id cannot smuggle a "/" past a pattern.
    for (const [method, pattern, route, options] of routes) {
      const m = pattern.exec(url.pathname);
      if (!m) continue;
      pathKnown = true;
      if (method === request.method || (method === "GET" && request.method === "HEAD")) {
        matched = {
          route,
          params: m.slice(1).map((p) => decodeURIComponent(p ?? "")),
          public: !!options?.public,
        };
        break;
      }
    }
    if (!matched) {
      throw notFound(pathKnown ? "This method is not served here." : "Nothing here.");
    }
    if (Number(request.headers.get("content-length") ?? 0) > MAX_PORTAL_BODY) {
      throw new AdminProblem(
        413,
        "payload_too_large",
        `Request bodies are limited to ${MAX_PORTAL_BODY} bytes.`,
      );
    }
    if (hasNonJsonBody(request)) {
      throw new AdminProblem(
        415,
        "unsupported_media_type",
        "Request bodies must be sent as application/json.",
      );
    }
    let session: PortalRequest["session"] = null;
    if (!matched.public) {
      session = currentSession(request);
      if (!session) {
        throw new AdminProblem(
          401,
          "unauthorized",
          "Sign in to the portal with a sign-in link from your provider.",
        );
      }
      const changes = request.method !== "GET" && request.method !== "HEAD";
      if (changes && !csrfMatches(session.id, request.headers.get(CSRF_HEADER))) {
        throw new AdminProblem(
          403,
          "csrf_token_required",
          "A change needs the session's X-CSRF-Token header.",
        );
      }
    }
    return matched.route({
      request,
      url,
      params: matched.params,
      session,
      json: (kind) => readBody(request, kind),
    });
  }

  /** The request's live session, of a tenant that still exists and is enabled. */
  function currentSession(request: Request): (Session & { id: string }) | null {
    const id = readCookie(request, PORTAL_COOKIE);
    if (id === null) return null;
    const session = sessions.find(id, "portal");
    const tenant = session?.tenantId ? deps.state.snapshot.tenants.get(session.tenantId) : undefined;
    if (!session || !tenant || tenant.disabled) return null;
    return { ...session, id };
  }

  return async (request) => {
    try {
      return await handle(request);
    } catch (err) {
      const problem = toProblem(err, deps.log);
      const response = problemResponse(problem, requestIdOf(request));
      response.headers.set("x-content-type-options", "nosniff");
      response.headers.set("content-security-policy", CSP.strict);
      return response;
    }
  };
}

async function readBody(request: Request, kind: keyof typeof bodies): Promise<Record<string, unknown>> {
  const text = await request.text();
  let value: unknown = {};
  if (text.trim() !== "") {
    try {
      value = JSON.parse(text);
    } catch {
      throw badRequest("The body is not valid JSON.");
    }
  }
  if (!bodies[kind].Check(value)) throw badRequest(`The body must be ${bodyWords[kind]}.`);
  return value as Record<string, unknown>;
}

/** Unknown or repeated query parameters are refused: a misspelt one must not be silently ignored. */
function onlyParams(query: URLSearchParams, allowed: string[]): void {
  const seen = new Set<string>();
  for (const name of query.keys()) {
    if (!allowed.includes(name) || seen.has(name)) {
      throw badRequest(`Query parameters allowed here, once each: ${allowed.join(", ")}.`);
    }
    seen.add(name);
  }
}

function toProblem(err: unknown, log: Log): AdminProblem {
  if (err instanceof AdminProblem) return err;
  if (err instanceof UsageQueryError) return badRequest(err.message);
  const text = String((err as Error)?.message ?? err);
  if (
    /SQLITE_(BUSY|LOCKED|FULL|READONLY|IOERR|CANTOPEN)|database is locked|disk is full|readonly/i.test(text)
  ) {
    return new AdminProblem(
      503,
      "store_unavailable",
      "The database refuses writes for now; try again shortly.",
      {},
      {
        "retry-after": "5",
      },
    );
  }
  log("error", "portal error", { error: err instanceof Error ? (err.stack ?? text) : text });
  return new AdminProblem(500, "internal_error", "The portal failed to handle this request.");
}
