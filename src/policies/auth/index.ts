/**
 * Authentication: the key comes from `Authorization: Bearer` or `X-API-Key`, never the query string.
 * Every failure is the same 401, whatever the path, so unauthenticated clients learn nothing.
 */
import { Refusal } from "../../gateway/refusal.ts";
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

export function createAuthPolicy(deps: {
  clock: Clock;
  onUse?: (keyId: string, at: number) => void;
}): Policy {
  return {
    name: "auth",
    check(ctx: RequestContext) {
      const secret = presentedKey(ctx.headers);
      if (!secret || !plausibleKey(secret)) return new Refusal("unauthorized", UNAUTHORIZED);
      const key = ctx.snapshot.keysByHash.get(hashKey(secret));
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
