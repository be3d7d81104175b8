/**
 * What the data plane would do with a request, and why, without proxying or counting it: the
 * canonical path, the tenant and key, the route, every rule that matched, every limit and quota with
 * its count and what this request would do to it, and the outcome with its problem type.
 *
 * It runs the data plane's own policy objects in the data plane's order (the limits policy through
 * its counting-free `explain`), so its outcome is the one a real request would get at this moment.
 * Shadow rules, limits and quotas are shown with their mode, and `wouldRefuse` lists the codes they
 * would have refused the request with had they been enforced.
 * Unlike the data plane it says why a credential fails: its readers are operators, not clients.
 */
import { canonicalize } from "../gateway/canonical-path.ts";
import { NEVER_FORWARDED } from "../gateway/http-methods.ts";
import { problemType } from "../gateway/problem.ts";
import { Refusal, type RefusalCode } from "../gateway/refusal.ts";
import type { KeyView, Snapshot, TenantView } from "../gateway/snapshot.ts";
import { acceptedSources } from "../identity/accepted.ts";
import { namesTenant } from "../identity/agree.ts";
import { locateTenant, type NamedTenant } from "../identity/namers.ts";
import { outOfScope } from "../identity/tenant-scope.ts";
import { looksLikeJwt, type TokenVerifier } from "../identity/tokens.ts";
import type { Clock } from "../lib/clock.ts";
import type { CounterState, CountersExplanation, LimitsExplanation } from "../policies/limits/policy.ts";
import type { Policy, RequestContext } from "../policies/policy.ts";
import { ruleMatches } from "../policies/rules/index.ts";

/** The limits policy, judging without counting: this node's counters, or the shared ones (asynchronous). */
export interface ExplainableLimits {
  explain(tenant: TenantView, key: KeyView, cost: number): LimitsExplanation | Promise<LimitsExplanation>;
}

export interface ExplainPolicies {
  tokens: TokenVerifier;
  route: Policy;
  tenantScope: Policy;
  rules: Policy;
  bodySize: Policy;
  limits: ExplainableLimits;
}

/** What a token proved beyond its tenant and subject. */
export interface TokenFacts {
  source: string;
  scopes: ReadonlySet<string>;
  claims: Readonly<Record<string, unknown>> | null;
}

/** Who the request is made as: a tenant and key (or token subject), or why no credential would pass. */
export type Identity =
  | { tenant: TenantView; key: KeyView; keyGiven: boolean; token?: TokenFacts }
  | { unauthorized: string; tenant?: TenantView; key?: KeyView };

export interface ExplainInput {
  method: string;
  /** Path and query, as a client would send them. */
  target: string;
  headers: Headers;
  identity: Identity;
}

export type Stage =
  | "method"
  | "path"
  | "identity"
  | "auth"
  | "route"
  | "tenant-scope"
  | "rules"
  | "body-size"
  | "limits"
  | "upstream";

/** How the request's tenant was named and proven. */
export interface IdentityExplanation {
  /** The credential source that proved the tenant: apiKey, or a jwt source's name. */
  source: string | null;
  /** Tenants the Host, path prefix or header name, and whether the credential's is each. */
  named: (NamedTenant & { agrees: boolean })[];
  /** Scopes the token carries. */
  scopes: string[];
  /** Why a tenant-scoped route would answer 404, or null. */
  outOfScope: string | null;
}

export interface Explanation {
  outcome: "forwarded" | "refused";
  /** The status a refusal gets; null when the request would be forwarded (the upstream decides). */
  status: number | null;
  /** urn:gatehouse:problem:<code> of a refusal. */
  problem: string | null;
  detail: string | null;
  refusedBy: Stage | null;
  request: { method: string; path: string | null; query: string };
  tenant: { id: string; plan: string } | null;
  key: { id: string } | null;
  identity: IdentityExplanation;
  route: {
    match: string;
    declaredAt: string;
    upstream: string;
    cost: number;
    /** Names of the vault credentials the request would carry (never their values). */
    credentials: string[];
    /** Where a post-paid cost is read from the response, and what counts when it cannot be. */
    costFrom: { header: string; fallback: number } | { json: string; fallback: number } | null;
  } | null;
  rules: { effect: "allow" | "deny"; mode: "enforce" | "shadow"; pattern: string; declaredAt: string }[];
  limits: (CounterState & { retryAfter: number | null })[];
  concurrency: { limit: number; inFlight: number; refuses: boolean } | null;
  /** Which counters decided the limits; null when the request did not reach them. */
  counters: CountersExplanation | null;
  /** Codes shadow rules, limits and quotas would refuse with, for a request the enforced ones pass. */
  wouldRefuse: RefusalCode[];
}

export async function explainRequest(
  snapshot: Snapshot,
  clock: Clock,
  p: ExplainPolicies,
  input: ExplainInput,
): Promise<Explanation> {
  const method = input.method.toUpperCase();
  const out: Explanation = {
    outcome: "forwarded",
    status: null,
    problem: null,
    detail: null,
    refusedBy: null,
    request: { method, path: null, query: "" },
    tenant: null,
    key: null,
    identity: { source: null, named: [], scopes: [], outOfScope: null },
    route: null,
    rules: [],
    limits: [],
    concurrency: null,
    counters: null,
    wouldRefuse: [],
  };
  const refuse = (stage: Stage, r: Refusal) => {
    if (out.refusedBy !== null) return;
    out.outcome = "refused";
    out.status = r.status;
    out.problem = problemType(r.code);
    out.detail = r.detail;
    out.refusedBy = stage;
  };

  if (NEVER_FORWARDED.includes(method)) {
    refuse("method", new Refusal("method_not_allowed", `${method} is never forwarded.`));
  }
  // The data plane sees the target as Bun.serve parsed it (a WHATWG URL: dot segments resolved, `\`
  // read as `/`), so explain parses it the same way before making it canonical.
  const url = URL.parse(input.target, "http://explain/");
  const canonical = url
    ? canonicalize(url.href)
    : ({ ok: false, reason: "the request target is not a valid URL" } as const);
  if (!canonical.ok) {
    refuse("path", new Refusal("bad_request", `The request path was refused: ${canonical.reason}.`));
    return out;
  }
  const located =
    snapshot.identity.namers.length > 0
      ? locateTenant(snapshot.identity.namers, input.headers, canonical)
      : { ...canonical, named: [] };
  if (located instanceof Refusal) {
    refuse("identity", located);
    return out;
  }
  out.request.path = located.path;
  out.request.query = canonical.query;

  const id = input.identity;
  if (id.tenant) out.tenant = { id: id.tenant.id, plan: id.tenant.plan };
  if (id.key && !("keyGiven" in id && !id.keyGiven)) out.key = { id: id.key.id };
  if ("token" in id && id.token) {
    out.identity.source = id.token.source;
    out.identity.scopes = [...id.token.scopes];
  } else if ("keyGiven" in id && id.keyGiven) out.identity.source = "apiKey";
  out.identity.named = located.named.map((n) => ({
    ...n,
    agrees: id.tenant !== undefined && namesTenant(n.value, id.tenant, n.source === "subdomain"),
  }));
  const accepted = acceptedSources(snapshot, method, located.segments);
  if ("unauthorized" in id) refuse("auth", new Refusal("unauthorized", id.unauthorized));
  else if (id.keyGiven && !("token" in id && id.token) && !accepted.apiKeys) {
    refuse("auth", new Refusal("unauthorized", "This route does not accept API keys."));
  } else if ("token" in id && id.token && !accepted.jwt.some((s) => s.name === id.token!.source)) {
    refuse("auth", new Refusal("unauthorized", `This route does not accept tokens of ${id.token.source}.`));
  } else if (out.identity.named.some((n) => !n.agrees)) {
    const n = out.identity.named.find((x) => !x.agrees)!;
    refuse(
      "auth",
      new Refusal(
        "unauthorized",
        `The ${n.source} names tenant "${n.value}", but the credential proves another.`,
      ),
    );
  }

  const ctx: RequestContext = {
    requestId: "explain",
    method,
    path: located.path,
    segments: located.segments,
    lenientSegments: located.lenientSegments,
    query: canonical.query,
    startedAt: clock.now(),
    headers: input.headers,
    snapshot,
    cost: 1,
    wouldRefuse: null,
    responseHeaders: new Map(),
    onDone: () => {},
    ...(id.tenant ? { tenant: id.tenant } : {}),
    ...(id.key ? { key: id.key } : {}),
    ...("token" in id && id.token ? { identity: { named: located.named, scopes: id.token.scopes } } : {}),
  };

  const routed = p.route.check(ctx);
  if (routed) refuse("route", routed);
  else if (ctx.route) {
    const from = ctx.route.costFrom;
    out.route = {
      match: ctx.route.match,
      declaredAt: `routes[${ctx.route.index}]`,
      upstream: ctx.upstream!.name,
      cost: ctx.cost,
      credentials: [...ctx.upstream!.credentials],
      costFrom:
        from === null
          ? null
          : from.kind === "header"
            ? { header: from.name, fallback: from.fallback }
            : { json: from.path.join("."), fallback: from.fallback },
    };
  }
  if (!id.tenant || !id.key) return out;

  if (ctx.route) {
    out.identity.outOfScope = outOfScope(ctx);
    const scoped = p.tenantScope.check(ctx);
    if (scoped) refuse("tenant-scope", scoped);
  }
  for (const rule of [...id.tenant.rules, ...id.key.rules]) {
    if (ruleMatches(rule, ctx)) {
      out.rules.push({
        effect: rule.effect,
        mode: rule.shadow ? "shadow" : "enforce",
        pattern: rule.pattern.text,
        declaredAt: rule.declaredAt,
      });
    }
  }
  const ruled = p.rules.check(ctx);
  if (ruled) refuse("rules", ruled);
  const sized = p.bodySize.check(ctx);
  if (sized) refuse("body-size", sized);

  const limits = await p.limits.explain(id.tenant, id.key, ctx.cost);
  out.limits = limits.counters.map((c) => ({
    ...c,
    retryAfter: c.refuses && c.fitsInMs !== null ? Math.ceil(c.fitsInMs / 1000) : null,
  }));
  out.concurrency = limits.concurrency;
  out.counters = limits.store ?? { decidedBy: "memory", nodes: null };
  if (limits.refusal) refuse("limits", limits.refusal);
  // The proxy's check, made after every policy has admitted the request.
  const missing = ctx.upstream?.unavailableCredential;
  if (missing) {
    refuse(
      "upstream",
      new Refusal(
        "bad_gateway",
        `The upstream's credential "${missing}" is not in the vault or cannot be decrypted; PUT /credentials/${missing} to store it again.`,
      ),
    );
  }
  if (out.refusedBy === null) out.wouldRefuse = [...(ctx.wouldRefuse ?? []), ...limits.wouldRefuse];
  return out;
}

/**
 * The key with id `keyId` as the data plane would judge it: present, enabled, unexpired, its tenant
 * present and enabled; or why not.
 */
export function identityOfKey(snapshot: Snapshot, keyId: string, now: number): Identity | null {
  let key: KeyView | undefined;
  for (const k of snapshot.keysByHash.values()) {
    // A rotated key appears twice during its grace period; the current secret's view has no graceUntil.
    if (k.id === keyId && (key === undefined || k.graceUntil === null)) key = k;
  }
  if (!key) return null;
  return judgeKey(snapshot, key, now, true);
}

/** The key a presented secret names, judged as the data plane would (for test mode's debug header). */
export function identityOfSecret(snapshot: Snapshot, key: KeyView | undefined, now: number): Identity {
  if (!key) return { unauthorized: "No key has this secret." };
  return judgeKey(snapshot, key, now, true);
}

function judgeKey(snapshot: Snapshot, key: KeyView, now: number, keyGiven: boolean): Identity {
  const tenant = snapshot.tenants.get(key.tenantId);
  const why = key.disabled
    ? "The key is disabled."
    : key.expiresAt !== null && now >= key.expiresAt
      ? `The key expired at ${new Date(key.expiresAt).toISOString()}.`
      : key.graceUntil !== null && now >= key.graceUntil
        ? "This is the key's previous secret, and its grace period has ended."
        : !tenant
          ? "The key's tenant is gone."
          : tenant.disabled
            ? "The key's tenant is disabled."
            : null;
  if (why !== null || !tenant) return { unauthorized: why ?? "", ...(tenant ? { tenant } : {}), key };
  return { tenant, key, keyGiven };
}

/**
 * A tenant explained as a key of its own with no policies of its own and no traffic yet would be:
 * per-key limits count from zero.
 */
export function identityOfTenant(snapshot: Snapshot, tenantId: string): Identity | null {
  const tenant = snapshot.tenants.get(tenantId);
  if (!tenant) return null;
  if (tenant.disabled) return { unauthorized: "The tenant is disabled.", tenant };
  const key: KeyView = {
    id: "(a new key)",
    uid: "explain:no-key",
    tenantId,
    expiresAt: null,
    disabled: false,
    graceUntil: null,
    limits: [],
    rules: [],
    quotas: [],
  };
  return { tenant, key, keyGiven: false };
}

/** The tenant and subject a bearer token proves, judged as the data plane would; or why it proves none. */
export async function identityOfToken(
  snapshot: Snapshot,
  tokens: TokenVerifier,
  token: string,
  now: number,
): Promise<Identity> {
  if (!looksLikeJwt(token)) return { unauthorized: "This is not a JWT (three base64url parts)." };
  const r = await tokens.verify(snapshot, token, snapshot.identity.jwt, now);
  if (!r.ok) return { unauthorized: `The token is refused: ${r.why}.` };
  return {
    tenant: r.tenant,
    key: r.key,
    keyGiven: true,
    token: { source: r.source.name, scopes: r.scopes, claims: r.claims },
  };
}
