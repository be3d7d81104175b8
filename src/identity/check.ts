/**
 * What the schema cannot say about identity settings, as located issues: names that clash or refer
 * to nothing, algorithms that must not be accepted or mixed, keys that are private or of the wrong
 * type, patterns that could never name a tenant, bounds on clock skew and lifetimes, scopes no source
 * provides, and external ids two tenants share. Messages never quote key material or secrets.
 */
import { readFileSync } from "node:fs";
import type { ReferenceIssue } from "../config/check-references.ts";
import type { GatewayConfig } from "../config/schema.ts";
import { parseDuration } from "../config/units.ts";
import { closest } from "../lib/closest.ts";
import {
  base64urlBytes,
  familyOf,
  hasPrivateMembers,
  isSymmetric,
  MIN_SECRET_BYTES,
  REQUIRED_MEMBERS,
  usableFor,
} from "./keys.ts";
import { parseHostPattern, parsePathPrefix } from "./namers.ts";
import { JWT_ALGORITHMS, type JwkDecl, type JwtAlgorithm, type JwtSourceDecl } from "./schema.ts";
import { sourceName } from "./sources.ts";

type Path = (string | number)[];

export const MAX_CLOCK_SKEW = "60s";
const MAX_LIFETIME = "365d";
const MAX_FETCH_TIMEOUT = "60s";

/** Headers that carry credentials, framing or routing: none of them can name a tenant. */
const notANamer = new Set([
  "authorization",
  "x-api-key",
  "host",
  "connection",
  "content-length",
  "transfer-encoding",
  "te",
  "upgrade",
  "cookie",
]);

export function checkIdentity(c: GatewayConfig): ReferenceIssue[] {
  const issues: ReferenceIssue[] = [];
  const sources = c.identity ?? [];
  const credentialNames: string[] = [];
  const names = new Map<string, number>();
  const issuers = new Map<string, number>();
  let scopes = false;

  sources.forEach((s, i) => {
    const base: Path = ["identity", i];
    const name = sourceName(s);
    const kind = Object.keys(s)[0]!;
    const seen = names.get(name);
    if (seen !== undefined) {
      issues.push(
        "apiKey" in s || "jwt" in s
          ? {
              path: [...base, kind, "name"],
              message: `identity[${seen}] is already named "${name}"`,
              hint: "give each credential source its own name: routes and usage rows tell them apart by it",
            }
          : {
              path: [...base, kind],
              message: `identity[${seen}] is already a ${kind} source`,
              hint: `keep one ${kind} source`,
            },
      );
    } else names.set(name, i);
    if ("apiKey" in s || "jwt" in s) credentialNames.push(name);

    if ("jwt" in s) {
      const other = issuers.get(s.jwt.issuer);
      if (other !== undefined) {
        issues.push({
          path: [...base, "jwt", "issuer"],
          message: `identity[${other}] trusts the same issuer`,
          hint: "a token's iss picks the one source that verifies it; merge the two sources",
        });
      } else issuers.set(s.jwt.issuer, i);
      if (s.jwt.scopeClaim) scopes = true;
      issues.push(...checkJwt([...base, "jwt"], s.jwt, c));
    } else if ("subdomain" in s) {
      const why = parseHostPattern(s.subdomain).error;
      if (why)
        issues.push({ path: [...base, "subdomain"], message: why, hint: "e.g. {tenant}.api.example.com" });
    } else if ("pathPrefix" in s) {
      const why = parsePathPrefix(s.pathPrefix).error;
      if (why) issues.push({ path: [...base, "pathPrefix"], message: why, hint: "e.g. /t/{tenant}" });
    } else if ("header" in s && notANamer.has(s.header.toLowerCase())) {
      issues.push({
        path: [...base, "header"],
        message: `${s.header} carries credentials or framing and cannot name a tenant`,
        hint: "name the tenant in a header of its own, e.g. X-Tenant",
      });
    }
  });
  if (sources.length > 0 && credentialNames.length === 0) {
    issues.push({
      path: ["identity"],
      message: "no credential source (apiKey or jwt) is listed, so no request could authenticate",
      hint: "add - apiKey: {} or a jwt source; subdomain, pathPrefix and header only name a tenant",
    });
  }

  const declared = sources.length > 0 ? credentialNames : ["apiKey"];
  c.routes.forEach((r, i) => {
    r.identity?.forEach((n, j) => {
      if (declared.includes(n)) return;
      const path: Path = ["routes", i, "identity", j];
      const namer = names.has(n) && !credentialNames.includes(n);
      const guess = closest(n, declared);
      issues.push({
        path,
        message: namer
          ? `"${n}" only names a tenant; a route lists the credential sources it accepts`
          : `no credential source named "${n}"`,
        hint: guess && !namer ? `did you mean "${guess}"?` : `credential sources: ${declared.join(", ")}`,
      });
    });
    if (r.tenantIn && r.tenantIn.query === undefined && r.tenantIn.header === undefined) {
      issues.push({ path: ["routes", i, "tenantIn"], message: "give query, header or both" });
    }
    const h = r.tenantIn?.header?.toLowerCase();
    if (h !== undefined && notANamer.has(h)) {
      issues.push({
        path: ["routes", i, "tenantIn", "header"],
        message: `${r.tenantIn!.header} carries credentials or framing and cannot name a tenant`,
      });
    }
  });

  if (!scopes) issues.push(...scopeRulesWithoutSource(c));
  issues.push(...externalIdClashes(c));
  return issues;
}

function checkJwt(base: Path, j: JwtSourceDecl, c: GatewayConfig): ReferenceIssue[] {
  const issues: ReferenceIssue[] = [];
  const algorithms: JwtAlgorithm[] = [];
  j.algorithms.forEach((a, i) => {
    if ((JWT_ALGORITHMS as readonly string[]).includes(a)) algorithms.push(a as JwtAlgorithm);
    else if (a.toLowerCase() === "none") {
      issues.push({
        path: [...base, "algorithms", i],
        message: '"none" is never accepted: an unsigned token proves nothing',
        hint: "name the algorithm your identity provider signs with, e.g. RS256",
      });
    } else {
      const guess = closest(a, JWT_ALGORITHMS);
      issues.push({
        path: [...base, "algorithms", i],
        message: `${JSON.stringify(a)} is not a signature algorithm gatehouse verifies`,
        hint: guess ? `did you mean "${guess}"?` : `one of ${JWT_ALGORITHMS.join(", ")}`,
      });
    }
  });
  const symmetric = algorithms.filter(isSymmetric);
  if (symmetric.length > 0 && symmetric.length < algorithms.length) {
    issues.push({
      path: [...base, "algorithms"],
      message: "HS algorithms (shared secrets) are mixed with public-key algorithms",
      hint: "a source is either HS or asymmetric, so a public key can never be used as an HMAC secret; split it",
    });
  }

  const duration = (key: string, text: string | undefined, max: string, zeroOk = false) => {
    if (text === undefined) return;
    const ms = parseDuration(text);
    if (ms === 0 && !zeroOk) issues.push({ path: [...base, key], message: "must be longer than 0" });
    else if (!(ms <= parseDuration(max)))
      issues.push({ path: [...base, key], message: `must be at most ${max}` });
  };
  duration("clockSkew", j.clockSkew, MAX_CLOCK_SKEW, true);
  duration("maxLifetime", j.maxLifetime, MAX_LIFETIME);

  const jwks = j.jwks;
  const kp: Path = [...base, "jwks"];
  const given = (["url", "file", "keys"] as const).filter((k) => jwks[k] !== undefined);
  if (given.length !== 1) {
    issues.push({
      path: kp,
      message: given.length ? `give one of ${given.join(" and ")}, not both` : "give url, file or keys",
      hint: "url for an identity provider's JWKS endpoint, file or keys for offline development",
    });
  }
  for (const key of ["cacheFor", "timeout", "cooldown"] as const) {
    if (jwks[key] !== undefined && jwks.url === undefined) {
      issues.push({ path: [...kp, key], message: `${key} applies to keys fetched from a url only` });
    }
  }
  const kd = (key: "cacheFor" | "timeout" | "cooldown", max: string) => {
    const text = jwks[key];
    if (text === undefined) return;
    const ms = parseDuration(text);
    if (ms === 0) issues.push({ path: [...kp, key], message: "must be longer than 0" });
    else if (!(ms <= parseDuration(max)))
      issues.push({ path: [...kp, key], message: `must be at most ${max}` });
  };
  kd("cacheFor", "7d");
  kd("timeout", MAX_FETCH_TIMEOUT);
  kd("cooldown", "1d");
  if (symmetric.length > 0 && symmetric.length === algorithms.length && jwks.url !== undefined) {
    issues.push({
      path: [...kp, "url"],
      message: "HS algorithms verify with a shared secret, which is never published at a url",
      hint: "write the secret under jwks.keys as { kty: oct, k: ${YOUR_SECRET} }",
    });
  }
  jwks.keys?.forEach((k, i) => {
    issues.push(...jwkIssues([...kp, "keys", i], k, algorithms));
  });
  if (jwks.file !== undefined && given.length === 1) {
    const read = readJwksFile(jwks.file);
    if ("error" in read) issues.push({ path: [...kp, "file"], message: read.error });
    else {
      const bad = read.keys.flatMap((k, i) =>
        jwkIssues([], k, algorithms).map((x) => `keys[${i}]: ${x.message}`),
      );
      if (bad.length) issues.push({ path: [...kp, "file"], message: `the file's ${bad.join("; ")}` });
    }
  }

  if (j.planClaim) {
    const plans = Object.keys(c.plans);
    for (const [value, plan] of Object.entries(j.planClaim.plans)) {
      if (plans.includes(plan)) continue;
      const guess = closest(plan, plans);
      issues.push({
        path: [...base, "planClaim", "plans", value],
        message: `no plan named ${JSON.stringify(plan)}`,
        hint: guess ? `did you mean "${guess}"?` : `declared plans: ${plans.join(", ")}`,
      });
    }
  }
  return issues;
}

/** What is wrong with one key for a source with these algorithms. */
export function jwkIssues(path: Path, k: JwkDecl, algorithms: readonly JwtAlgorithm[]): ReferenceIssue[] {
  const issues: ReferenceIssue[] = [];
  if (hasPrivateMembers(k)) {
    issues.push({
      path,
      message: "this is a private key: a verifier needs only the public part",
      hint: "remove d, p, q, dp, dq, qi and oth (never commit a private key)",
    });
    return issues;
  }
  const missing = REQUIRED_MEMBERS[k.kty].filter((m) => k[m as keyof JwkDecl] === undefined);
  if (missing.length) {
    issues.push({ path, message: `a ${k.kty} key needs ${missing.join(", ")}` });
    return issues;
  }
  if (k.kty === "oct" && base64urlBytes(k.k!) < MIN_SECRET_BYTES) {
    issues.push({
      path: [...path, "k"],
      message: `the shared secret is shorter than ${MIN_SECRET_BYTES} bytes (or not base64url)`,
      hint: `use at least ${MIN_SECRET_BYTES} random bytes, base64url-encoded`,
    });
  }
  if (algorithms.length > 0 && !algorithms.some((a) => usableFor(k, a))) {
    const kinds = [...new Set(algorithms.map((a) => familyOf(a).kty))].join(" or ");
    issues.push({
      path,
      message:
        k.kty === "oct" || kinds === "oct"
          ? `an ${k.kty} key cannot verify this source's algorithms (${algorithms.join(", ")}): shared secrets and public keys never stand in for each other`
          : `no algorithm of this source (${algorithms.join(", ")}) can use this key (${k.kty}${k.crv ? ` ${k.crv}` : ""})`,
      hint: `keys here must be ${kinds} keys for those algorithms (check crv, use and alg)`,
    });
  }
  return issues;
}

/** A JWKS document on disk, or why it cannot be used. */
export function readJwksFile(file: string): { keys: JwkDecl[] } | { error: string } {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { error: code === "ENOENT" ? "file not found" : `cannot read the file (${code ?? String(err)})` };
  }
  return parseJwks(text);
}

/** A JWKS document's keys, structurally checked; unknown members are dropped. */
export function parseJwks(text: string): { keys: JwkDecl[] } | { error: string } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return { error: "not a JSON document" };
  }
  const keys = (doc as { keys?: unknown })?.keys;
  if (!Array.isArray(keys)) return { error: 'not a JWKS document: it has no "keys" list' };
  const out: JwkDecl[] = [];
  for (const k of keys) {
    if (typeof k !== "object" || k === null) continue;
    const kty = (k as { kty?: unknown }).kty;
    if (kty !== "RSA" && kty !== "EC" && kty !== "OKP" && kty !== "oct") continue;
    const jwk: Record<string, unknown> = { kty };
    for (const m of [
      "kid",
      "alg",
      "use",
      "crv",
      "n",
      "e",
      "x",
      "y",
      "k",
      "d",
      "p",
      "q",
      "dp",
      "dq",
      "qi",
    ] as const) {
      const v = (k as Record<string, unknown>)[m];
      if (typeof v === "string") jwk[m] = v;
    }
    const ops = (k as { key_ops?: unknown }).key_ops;
    if (Array.isArray(ops) && ops.every((o) => typeof o === "string")) jwk.key_ops = ops;
    out.push(jwk as JwkDecl);
  }
  return { keys: out };
}

/** A rule that tests a scope, in a config where no source provides scopes, would never apply. */
function scopeRulesWithoutSource(c: GatewayConfig): ReferenceIssue[] {
  const issues: ReferenceIssue[] = [];
  const rules = (path: Path, list: { scope?: string }[] | undefined) =>
    list?.forEach((r, i) => {
      if (r.scope === undefined) return;
      issues.push({
        path: [...path, i, "scope"],
        message:
          "this rule tests a scope, but no jwt source in identity: sets scopeClaim, so no request has scopes",
        hint: "set scopeClaim (e.g. scope) on the jwt source whose tokens carry them, or remove scope:",
      });
    });
  for (const [name, p] of Object.entries(c.plans)) rules(["plans", name, "rules"], p.rules);
  for (const [id, t] of Object.entries(c.tenants ?? {})) {
    rules(["tenants", id, "rules"], t.rules);
    t.keys?.forEach((k, i) => {
      rules(["tenants", id, "keys", i, "rules"], k.rules);
    });
  }
  return issues;
}

/** An external id names one tenant: not two, and not another tenant's id. */
function externalIdClashes(c: GatewayConfig): ReferenceIssue[] {
  const issues: ReferenceIssue[] = [];
  const tenants = c.tenants ?? {};
  const owner = new Map<string, string>();
  for (const [id, t] of Object.entries(tenants)) {
    t.externalIds?.forEach((x, i) => {
      const path: Path = ["tenants", id, "externalIds", i];
      const other = owner.get(x);
      if (other !== undefined && other !== id) {
        issues.push({
          path,
          message: `tenant "${other}" already has this external id`,
          hint: "an external id names exactly one tenant",
        });
      } else if (x !== id && tenants[x] !== undefined) {
        issues.push({
          path,
          message: `this is the id of tenant "${x}"`,
          hint: "a token naming it would be ambiguous; choose another external id",
        });
      }
      owner.set(x, id);
    });
  }
  return issues;
}
