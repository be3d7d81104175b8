/**
 * Bearer JWTs → the tenant and subject they prove, with jose doing the cryptography (WebCrypto).
 *
 * The unverified token is read for two things only: its `iss`, to pick the one source that trusts
 * that issuer, and its header's `alg` and `kid`, to pick a key of that source. Everything else is
 * read after the signature and the claims check out: `exp` is required, `nbf` and `iat` are honoured,
 * all with the source's clock skew (at most 60 s), and the lifetime is bounded. `alg` must be one the
 * source lists, which never includes `none`, and each algorithm gets only keys of its own type.
 */
import { decodeJwt, decodeProtectedHeader, errors, jwtVerify } from "jose";
import type { KeyView, Snapshot, TenantView } from "../gateway/snapshot.ts";
import { claimAt, nameClaim, scopesOf, subjectKeyId, subjectUid } from "./claims.ts";
import type { JwtSource } from "./compile.ts";
import type { RemoteKeySets } from "./jwks-cache.ts";
import { LocalKeySet, NoKeyError } from "./keys.ts";
import { tenantOnPlan } from "./plan.ts";
import type { JwtAlgorithm } from "./schema.ts";

/** Longer bearer tokens are refused unread (Envoy and most servers stop at 8 KiB of header anyway). */
export const MAX_TOKEN_LENGTH = 8192;

/** A JWS compact serialization: three base64url parts; the header is JSON, so it starts `eyJ`. */
export const looksLikeJwt = (s: string) => s.startsWith("eyJ") && /^[\w-]+\.[\w-]*\.[\w-]*$/.test(s);

export interface TokenIdentity {
  readonly source: JwtSource;
  /** The tenant, on the plan the token picked if it picked one. */
  readonly tenant: TenantView;
  /** The subject as a key: `jwt:<source>:<subject>`, counted per subject by per-key limits. */
  readonly key: KeyView;
  readonly scopes: ReadonlySet<string>;
  /** The source's forwardClaims that the token carries, for X-Gatehouse-Context. */
  readonly claims: Readonly<Record<string, unknown>> | null;
}

export type TokenResult = ({ ok: true } & TokenIdentity) | { ok: false; why: string };

const none: readonly never[] = [];

export class TokenVerifier {
  constructor(private readonly remote: RemoteKeySets) {}

  async verify(
    snapshot: Snapshot,
    token: string,
    sources: readonly JwtSource[],
    now: number,
  ): Promise<TokenResult> {
    if (token.length > MAX_TOKEN_LENGTH)
      return fail(`the token is longer than ${MAX_TOKEN_LENGTH} characters`);
    let header: ReturnType<typeof decodeProtectedHeader>;
    let unverified: ReturnType<typeof decodeJwt>;
    try {
      header = decodeProtectedHeader(token);
      unverified = decodeJwt(token);
    } catch {
      return fail("the token is not a well-formed JWT");
    }
    const source = sources.find((s) => s.issuer === unverified.iss);
    if (!source) {
      return fail(
        typeof unverified.iss === "string"
          ? "no identity source accepted here trusts the token's issuer"
          : "the token has no iss",
      );
    }
    const alg = header.alg as JwtAlgorithm;
    if (typeof alg !== "string" || !source.algorithms.includes(alg)) {
      return fail(`alg ${JSON.stringify(alg ?? null)} is not one of ${source.algorithms.join(", ")}`);
    }
    if (header.kid !== undefined && typeof header.kid !== "string")
      return fail("the token's kid is not a string");

    const keys =
      source.keys instanceof LocalKeySet ? source.keys : this.remote.for(source.keys, source.algorithms);
    let key: CryptoKey | Uint8Array;
    try {
      key = await keys.key(alg, header.kid);
    } catch (err) {
      return fail(err instanceof NoKeyError ? err.message : `the key cannot be used (${String(err)})`);
    }

    let claims: Record<string, unknown>;
    try {
      ({ payload: claims } = await jwtVerify(token, key, {
        issuer: source.issuer,
        audience: [...source.audience],
        algorithms: [alg],
        requiredClaims: ["exp"],
        clockTolerance: source.skewMs / 1000,
        currentDate: new Date(now),
      }));
    } catch (err) {
      return fail(reason(err));
    }
    const exp = (claims.exp as number) * 1000;
    const iat = typeof claims.iat === "number" ? claims.iat * 1000 : null;
    if (iat !== null && iat > now + source.skewMs) return fail("the token was issued in the future");
    if (exp - (iat ?? now) > source.maxLifetimeMs) {
      return fail(`the token is valid for longer than maxLifetime (${source.maxLifetimeMs / 1000} s)`);
    }

    const claimName = source.tenantClaim.join(".");
    const tenantName = nameClaim(claimAt(claims, source.tenantClaim));
    if (tenantName === null) return fail(`the token has no ${claimName} claim naming a tenant`);
    const found = snapshot.tenantsByName.get(tenantName);
    if (!found) return fail(`no tenant has the id or external id the token's ${claimName} names`);
    if (found.disabled) return fail("the token's tenant is disabled");
    const subject = nameClaim(claimAt(claims, source.subjectClaim));
    if (subject === null)
      return fail(`the token has no ${source.subjectClaim.join(".")} claim naming its subject`);

    let tenant = found;
    if (source.planClaim) {
      const value = nameClaim(claimAt(claims, source.planClaim.path));
      if (value !== null) {
        const plan = source.planClaim.plans.get(value);
        const view = plan === undefined ? undefined : tenantOnPlan(snapshot, found, plan);
        if (!view)
          return fail(`the token's ${source.planClaim.path.join(".")} names no plan this source maps`);
        tenant = view;
      }
    }

    let forwarded: Record<string, unknown> | null = null;
    for (const [name, path] of source.forwardClaims) {
      const v = claimAt(claims, path);
      if (v === undefined) continue;
      forwarded ??= {};
      forwarded[name] = v;
    }
    const key_: KeyView = {
      id: subjectKeyId(source.name, subject),
      uid: subjectUid(source.name, found.uid, subject),
      tenantId: found.id,
      expiresAt: exp,
      disabled: false,
      graceUntil: null,
      limits: none,
      rules: none,
      quotas: none,
    };
    return {
      ok: true,
      source,
      tenant,
      key: key_,
      scopes: source.scopeClaim ? scopesOf(claimAt(claims, source.scopeClaim)) : new Set(),
      claims: forwarded,
    };
  }
}

const fail = (why: string): TokenResult => ({ ok: false, why });

function reason(err: unknown): string {
  if (err instanceof errors.JWTExpired) return "the token has expired";
  if (err instanceof errors.JWSSignatureVerificationFailed) return "the signature does not verify";
  if (err instanceof errors.JOSEError) return err.message;
  return String(err);
}
