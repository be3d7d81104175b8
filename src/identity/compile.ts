/**
 * gateway.yaml's identity settings in the form the data plane reads, built once per loaded config
 * (a snapshot rebuild after a control-API change reuses it, so a JWKS file is read once per load).
 */
import type { GatewayConfig } from "../config/schema.ts";
import { parseDuration } from "../config/units.ts";
import { SnapshotError } from "../gateway/build-snapshot.ts";
import { readJwksFile } from "./check.ts";
import { LocalKeySet } from "./keys.ts";
import { type Namer, parseHostPattern, parsePathPrefix } from "./namers.ts";
import type { JwtAlgorithm, JwtSourceDecl } from "./schema.ts";
import { DEFAULT_IDENTITY, sourceName } from "./sources.ts";

export interface RemoteKeys {
  readonly url: string;
  readonly cacheForMs: number;
  readonly timeoutMs: number;
  readonly cooldownMs: number;
}

export interface JwtSource {
  readonly kind: "jwt";
  readonly name: string;
  readonly issuer: string;
  readonly audience: readonly string[];
  readonly algorithms: readonly JwtAlgorithm[];
  /** Keys in hand, or where to fetch them. */
  readonly keys: LocalKeySet | RemoteKeys;
  readonly tenantClaim: readonly string[];
  readonly subjectClaim: readonly string[];
  readonly planClaim: {
    readonly path: readonly string[];
    readonly plans: ReadonlyMap<string, string>;
  } | null;
  readonly scopeClaim: readonly string[] | null;
  /** Claim name as written → its path. */
  readonly forwardClaims: readonly (readonly [string, readonly string[]])[];
  readonly maxLifetimeMs: number;
  readonly skewMs: number;
}

export type CredentialSource = { readonly kind: "apiKey"; readonly name: string } | JwtSource;

export interface CompiledIdentity {
  /** In the order written. */
  readonly credentials: readonly CredentialSource[];
  readonly namers: readonly Namer[];
  /** Whether an apiKey source is listed: without one, API keys open nothing. */
  readonly apiKeys: boolean;
  readonly jwt: readonly JwtSource[];
}

export const DEFAULTS = {
  cacheFor: "10m",
  timeout: "5s",
  cooldown: "30s",
  maxLifetime: "1d",
  clockSkew: "30s",
  claim: "sub",
};

const compiled = new WeakMap<object, CompiledIdentity>();

export function compileIdentity(config: Pick<GatewayConfig, "identity">): CompiledIdentity {
  const decl = config.identity ?? DEFAULT_IDENTITY;
  let out = compiled.get(decl);
  if (out) return out;
  const credentials: CredentialSource[] = [];
  const namers: Namer[] = [];
  decl.forEach((s, i) => {
    if ("apiKey" in s) credentials.push({ kind: "apiKey", name: sourceName(s) });
    else if ("jwt" in s) credentials.push(compileJwt(s.jwt, i));
    else if ("subdomain" in s) {
      const p = parseHostPattern(s.subdomain);
      if (p.error === undefined) namers.push({ kind: "subdomain", labels: p.labels });
    } else if ("pathPrefix" in s) {
      const p = parsePathPrefix(s.pathPrefix);
      if (p.error === undefined) namers.push({ kind: "pathPrefix", segments: p.segments });
    } else namers.push({ kind: "header", name: s.header.toLowerCase().replaceAll("_", "-") });
  });
  out = {
    credentials,
    namers,
    apiKeys: credentials.some((c) => c.kind === "apiKey"),
    jwt: credentials.filter((c): c is JwtSource => c.kind === "jwt"),
  };
  compiled.set(decl, out);
  return out;
}

const claimPath = (text: string | undefined) => (text ?? DEFAULTS.claim).split(".");

function compileJwt(j: JwtSourceDecl, index: number): JwtSource {
  const algorithms = j.algorithms as JwtAlgorithm[];
  let keys: JwtSource["keys"];
  if (j.jwks.url !== undefined) {
    keys = {
      url: j.jwks.url,
      cacheForMs: parseDuration(j.jwks.cacheFor ?? DEFAULTS.cacheFor),
      timeoutMs: parseDuration(j.jwks.timeout ?? DEFAULTS.timeout),
      cooldownMs: parseDuration(j.jwks.cooldown ?? DEFAULTS.cooldown),
    };
  } else if (j.jwks.file !== undefined) {
    // Checked when the config was validated; read again here because a trusted start-up skips checks.
    const read = readJwksFile(j.jwks.file);
    if ("error" in read) throw new SnapshotError(`identity[${index}].jwt.jwks.file: ${read.error}`);
    keys = new LocalKeySet(read.keys, algorithms);
  } else keys = new LocalKeySet(j.jwks.keys ?? [], algorithms);
  return {
    kind: "jwt",
    name: j.name ?? "jwt",
    issuer: j.issuer,
    audience: typeof j.audience === "string" ? [j.audience] : j.audience,
    algorithms,
    keys,
    tenantClaim: claimPath(j.tenantClaim),
    subjectClaim: claimPath(j.subjectClaim),
    planClaim: j.planClaim
      ? { path: j.planClaim.claim.split("."), plans: new Map(Object.entries(j.planClaim.plans)) }
      : null,
    scopeClaim: j.scopeClaim ? j.scopeClaim.split(".") : null,
    forwardClaims: (j.forwardClaims ?? []).map((c) => [c, c.split(".")] as const),
    maxLifetimeMs: parseDuration(j.maxLifetime ?? DEFAULTS.maxLifetime),
    skewMs: parseDuration(j.clockSkew ?? DEFAULTS.clockSkew),
  };
}
