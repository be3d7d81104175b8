/**
 * Authentication: the key or token comes from `Authorization: Bearer` (a key also from `X-API-Key`),
 * never the query string. Every failure is the same 401, whatever the path and whatever was wrong,
 * so unauthenticated clients learn nothing. What a token proves is worked out in identity/.
 */
import { Refusal } from "../../gateway/refusal.ts";
import type { KeyView, Snapshot } from "../../gateway/snapshot.ts";
import { acceptedSources } from "../../identity/accepted.ts";
import { agrees } from "../../identity/agree.ts";
import type { CompiledIdentity } from "../../identity/compile.ts";
import { looksLikeJwt, type TokenVerifier } from "../../identity/tokens.ts";
import type { Clock } from "../../lib/clock.ts";
import { hashKey, plausibleKey } from "../../lib/key-hash.ts";
import type { RequestContext, WaitingPolicy } from "../policy.ts";

const UNAUTHORIZED =
  "A valid API key is required: send it as Authorization: Bearer <key> or X-API-Key: <key>.";

export function presentedKey(headers: Headers): string | null | undefined {
  const auth = headers.get("authorization");
  const apiKey = headers.get("x-api-key");
  let bearer: string | null = null;
  if (auth !== null) {
    const m = /^Bearer ([^\s,]+)$/i.exec(auth);
    if (!m) return undefined;
    bearer = m[1]!;
  }
  // Two different credentials in one request are refused: which one would we believe?
  if (bearer !== null && apiKey !== null && bearer !== apiKey) return undefined;
  return bearer ?? apiKey;
}

/** Most secrets the cache holds before it starts over. */
export const KEY_CACHE_SIZE = 10_000;

/**
 * Presented secret → the key it hashes to, for one snapshot. Hashing costs about 0.5 µs a request
 * and a Map lookup by the secret 0.01 µs. Only keys that exist are cached, so guessing never fills
 * it; it holds secrets that are in this process's memory anyway whenever their clients send a
 * request, is bounded (cleared when full), and starts over as soon as a request sees a new snapshot,
 * so a revoked, rotated or deleted key is never served from it. Expiry and the disabled flags are
 * still checked on every request.
 */
export class KeyCache {
  private readonly keys = new Map<string, KeyView>();
  private snapshot: Snapshot | null = null;
  /** Lookups answered from the cache, and the others (hashed, or refused as implausible), for /metrics. */
  hits = 0;
  misses = 0;

  constructor(private readonly maxSize = KEY_CACHE_SIZE) {}

  lookup(snapshot: Snapshot, secret: string): KeyView | undefined {
    if (snapshot !== this.snapshot) {
      this.keys.clear();
      this.snapshot = snapshot;
    }
    let key = this.keys.get(secret);
    if (key !== undefined) {
      this.hits++;
      return key;
    }
    this.misses++;
    if (!plausibleKey(secret)) return undefined;
    key = snapshot.keysByHash.get(hashKey(secret));
    if (key === undefined) return undefined;
    if (this.keys.size >= this.maxSize) this.keys.clear();
    this.keys.set(secret, key);
    return key;
  }

  /** On every snapshot swap, so secrets of keys that are gone leave memory without waiting for a request. */
  clear(): void {
    this.keys.clear();
    this.snapshot = null;
  }

  get size(): number {
    return this.keys.size;
  }
}

/** The one 401 body: it names the credentials the config accepts, never what was wrong. */
function unauthorizedDetail(identity: CompiledIdentity): string {
  if (identity.jwt.length === 0) return UNAUTHORIZED;
  return identity.apiKeys
    ? "A valid API key or token is required: send it as Authorization: Bearer <credential> (or a key as X-API-Key: <key>)."
    : "A valid token is required: send it as Authorization: Bearer <token>.";
}

/**
 * The credential proves a tenant: an API key (synchronously), or a bearer JWT of a source the route
 * accepts (asynchronously: WebCrypto verifies). The proven tenant must be every tenant the request
 * names (subdomain, path prefix, header); otherwise it is refused exactly like a stranger.
 */
export function createAuthPolicy(deps: {
  clock: Clock;
  onUse?: (keyId: string, at: number) => void;
  cache?: KeyCache;
  tokens?: TokenVerifier;
}): WaitingPolicy {
  const cache = deps.cache ?? new KeyCache();
  const refuse = (ctx: RequestContext) =>
    new Refusal("unauthorized", unauthorizedDetail(ctx.snapshot.identity));
  return {
    name: "auth",
    check(ctx: RequestContext) {
      const secret = presentedKey(ctx.headers);
      if (!secret) return refuse(ctx);
      const accepted = acceptedSources(ctx.snapshot, ctx.method, ctx.segments);
      const now = deps.clock.now();
      if (looksLikeJwt(secret)) {
        if (!deps.tokens || accepted.jwt.length === 0 || ctx.headers.get("authorization") === null)
          return refuse(ctx);
        return deps.tokens.verify(ctx.snapshot, secret, accepted.jwt, now).then((r) => {
          if (!r.ok || !agrees(ctx.identity?.named, r.tenant)) return refuse(ctx);
          ctx.tenant = r.tenant;
          ctx.key = r.key;
          ctx.identity = {
            named: ctx.identity?.named ?? [],
            source: r.source.name,
            scopes: r.scopes,
            claims: r.claims,
          };
          return undefined;
        });
      }
      if (!accepted.apiKeys) return refuse(ctx);
      const key = cache.lookup(ctx.snapshot, secret);
      if (!key || key.disabled) return refuse(ctx);
      if (
        (key.expiresAt !== null && now >= key.expiresAt) ||
        (key.graceUntil !== null && now >= key.graceUntil)
      ) {
        return refuse(ctx);
      }
      const tenant = ctx.snapshot.tenants.get(key.tenantId);
      if (!tenant || tenant.disabled || !agrees(ctx.identity?.named, tenant)) return refuse(ctx);
      ctx.tenant = tenant;
      ctx.key = key;
      if (ctx.identity) ctx.identity.source = "apiKey";
      deps.onUse?.(key.id, now);
      return undefined;
    },
  };
}
