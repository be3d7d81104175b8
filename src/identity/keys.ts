/**
 * Verification keys, pinned to their algorithms. A key is offered only to the algorithms of its own
 * type (RSA to RS/PS, EC to ES on its curve, OKP to EdDSA, oct to HS), so a public key can never be
 * used as an HMAC secret and a shared secret never stands in for a public key (the RS/HS confusion
 * of CVE-2022-23541 and CVE-2023-48223). The token's `kid` is only ever compared with the ids of
 * keys in hand: it never becomes a path, a URL or a query.
 */
import { importJWK, type JWK } from "jose";
import type { JwkDecl, JwtAlgorithm } from "./schema.ts";

type Family = "RSA" | "EC" | "OKP" | "oct";

/** The key type (and curve) each algorithm takes. */
export function familyOf(alg: JwtAlgorithm): { kty: Family; crv?: string } {
  if (alg.startsWith("HS")) return { kty: "oct" };
  if (alg.startsWith("RS") || alg.startsWith("PS")) return { kty: "RSA" };
  if (alg === "EdDSA") return { kty: "OKP", crv: "Ed25519" };
  return { kty: "EC", crv: { ES256: "P-256", ES384: "P-384", ES512: "P-521" }[alg as "ES256"] };
}

export const isSymmetric = (alg: JwtAlgorithm) => alg.startsWith("HS");

/** Members that only a private key has: a JWKS must never hold them. */
export const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth"] as const;

/** Members each key type needs to be a key at all. */
export const REQUIRED_MEMBERS: Record<Family, readonly string[]> = {
  RSA: ["n", "e"],
  EC: ["crv", "x", "y"],
  OKP: ["crv", "x"],
  oct: ["k"],
};

/** Shorter HMAC secrets can be searched for; RFC 7518 asks for at least the hash's size. */
export const MIN_SECRET_BYTES = 32;

/** Whether `jwk` may verify a token signed with `alg`, by type, curve, use, operations and its own alg. */
export function usableFor(jwk: JwkDecl, alg: JwtAlgorithm): boolean {
  const f = familyOf(alg);
  if (jwk.kty !== f.kty || (f.crv !== undefined && jwk.crv !== f.crv)) return false;
  if (jwk.use !== undefined && jwk.use !== "sig") return false;
  if (jwk.key_ops !== undefined && !jwk.key_ops.includes("verify")) return false;
  return jwk.alg === undefined || jwk.alg === alg;
}

/** Why the key set offers no key for a token. */
export class NoKeyError extends Error {
  constructor(
    message: string,
    /** True when the token names a key id the set does not have: a refetch may bring it. */
    readonly unknownKid: boolean,
  ) {
    super(message);
  }
}

/** Keys in hand (written in the config, read from a file, or fetched), each imported once per algorithm. */
export class LocalKeySet {
  private readonly keys: readonly JwkDecl[];
  private readonly imported = new Map<JwkDecl, Map<string, Promise<CryptoKey | Uint8Array>>>();

  /** Keys no algorithm of `algorithms` could use (an encryption key, another curve) are left out. */
  constructor(keys: readonly JwkDecl[], algorithms: readonly JwtAlgorithm[]) {
    this.keys = keys.filter((k) => algorithms.some((a) => usableFor(k, a)) && !hasPrivateMembers(k));
  }

  get size(): number {
    return this.keys.length;
  }

  /** The one key that may have signed a token with this header, imported for its algorithm. */
  key(alg: JwtAlgorithm, kid: string | undefined): Promise<CryptoKey | Uint8Array> {
    const candidates = this.keys.filter((k) => usableFor(k, alg) && (kid === undefined || k.kid === kid));
    if (candidates.length === 0) {
      return Promise.reject(
        kid === undefined
          ? new NoKeyError(`no key can verify ${alg}`, false)
          : new NoKeyError("the token names a key id the key set does not have", true),
      );
    }
    // Trying several keys would let one token cost several verifications.
    if (candidates.length > 1) {
      return Promise.reject(
        new NoKeyError(
          `the token names no key id (kid) and ${candidates.length} keys could verify it`,
          false,
        ),
      );
    }
    const jwk = candidates[0]!;
    let byAlg = this.imported.get(jwk);
    if (!byAlg) {
      byAlg = new Map();
      this.imported.set(jwk, byAlg);
    }
    let key = byAlg.get(alg);
    if (!key) {
      key = importJWK(jwk as JWK, alg);
      // A key that fails to import is not cached: the error is reported, and the next token tries again.
      key.catch(() => byAlg.delete(alg));
      byAlg.set(alg, key);
    }
    return key;
  }
}

export const hasPrivateMembers = (jwk: JwkDecl) =>
  jwk.kty !== "oct" && PRIVATE_MEMBERS.some((m) => jwk[m] !== undefined);

/** The byte length of base64url text, or -1 when it is not base64url. */
export function base64urlBytes(text: string): number {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return -1;
  return Math.floor((text.length * 3) / 4);
}
