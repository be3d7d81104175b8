/**
 * Authentication: the key comes from `Authorization: Bearer` or `X-API-Key`, never the query string.
 * Every failure is the same 401, whatever the path, so unauthenticated clients learn nothing.
 */
import { Refusal } from "../../gateway/refusal.ts";
import type { KeyView, Snapshot } from "../../gateway/snapshot.ts";
import type { Clock } from "../../lib/clock.ts";
import { hashKey, plausibleKey } from "../../lib/key-hash.ts";
import type { Policy, RequestContext } from "../policy.ts";

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

  constructor(private readonly maxSize = KEY_CACHE_SIZE) {}

  lookup(snapshot: Snapshot, secret: string): KeyView | undefined {
    if (snapshot !== this.snapshot) {
      this.keys.clear();
      this.snapshot = snapshot;
    }
    let key = this.keys.get(secret);
    if (key !== undefined) return key;
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

export function createAuthPolicy(deps: {
  clock: Clock;
  onUse?: (keyId: string, at: number) => void;
  cache?: KeyCache;
}): Policy {
  const cache = deps.cache ?? new KeyCache();
  return {
    name: "auth",
    check(ctx: RequestContext) {
      const secret = presentedKey(ctx.headers);
      if (!secret) return new Refusal("unauthorized", UNAUTHORIZED);
      const key = cache.lookup(ctx.snapshot, secret);
      if (!key || key.disabled) return new Refusal("unauthorized", UNAUTHORIZED);
      const now = deps.clock.now();
      if (
        (key.expiresAt !== null && now >= key.expiresAt) ||
        (key.graceUntil !== null && now >= key.graceUntil)
      ) {
        return new Refusal("unauthorized", UNAUTHORIZED);
      }
      const tenant = ctx.snapshot.tenants.get(key.tenantId);
      if (!tenant || tenant.disabled) return new Refusal("unauthorized", UNAUTHORIZED);
      ctx.tenant = tenant;
      ctx.key = key;
      deps.onUse?.(key.id, now);
      return undefined;
    },
  };
}
