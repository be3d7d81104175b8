/**
 * gateway.yaml's identity settings: where the tenant of a request comes from (`identity:`), what a
 * route adds (`identity:` names, `tenantIn:`), and the tenant's `externalIds`. config/schema.ts
 * places these; they live here beside the code that reads them. (The identifier and duration forms
 * repeat config/schema.ts's patterns: importing them would make the two modules import each other.)
 */
import { type Static, Type as T } from "@sinclair/typebox";

const strict = { additionalProperties: false } as const;

const name = (description: string) =>
  T.String({
    pattern: "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
    description: `${description} Letters, digits, '_', '.' and '-'; at most 64 characters.`,
  });

const duration = (description: string) =>
  T.String({ pattern: "^[0-9]+(ms|s|m|h|d)$", description, examples: ["30s", "10m"] });

/** A claim name, or a dotted path into nested claims (`org.id`). */
export const ClaimPath = T.String({
  pattern: "^[A-Za-z0-9_:/-]+(\\.[A-Za-z0-9_:/-]+){0,7}$",
  description: "A claim name, or a dotted path into nested objects such as org.id.",
  examples: ["sub", "org.id"],
});

/** Signature algorithms a token may use. `none` is not one, and never will be. */
export const JWT_ALGORITHMS = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "HS256",
  "HS384",
  "HS512",
] as const;
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];

const jwkString = (description?: string) => T.Optional(T.String(description ? { description } : {}));

/**
 * A JSON Web Key (RFC 7517) as an identity provider publishes it. The private members are listed so
 * that a private key pasted by mistake gets a message that says so, not "unknown key".
 */
export const Jwk = T.Object(
  {
    kty: T.Union([T.Literal("RSA"), T.Literal("EC"), T.Literal("OKP"), T.Literal("oct")]),
    kid: jwkString("Key id; tokens name the key that signed them by it."),
    alg: jwkString(),
    use: jwkString(),
    key_ops: T.Optional(T.Array(T.String())),
    ext: T.Optional(T.Boolean()),
    n: jwkString(),
    e: jwkString(),
    crv: jwkString(),
    x: jwkString(),
    y: jwkString(),
    k: jwkString("The shared secret of an oct key (HS algorithms); write it as ${VAR}."),
    x5c: T.Optional(T.Array(T.String())),
    x5t: jwkString(),
    "x5t#S256": jwkString(),
    d: jwkString(),
    p: jwkString(),
    q: jwkString(),
    dp: jwkString(),
    dq: jwkString(),
    qi: jwkString(),
    oth: T.Optional(T.Array(T.Unknown())),
  },
  { ...strict, description: "A public JSON Web Key." },
);

export const JwksSettings = T.Object(
  {
    url: T.Optional(
      T.String({
        pattern: "^https?://[^\\s]+$",
        description: "Where the identity provider publishes its keys (a JWKS document).",
      }),
    ),
    file: T.Optional(
      T.String({ description: "A JWKS document on disk, relative to the working directory." }),
    ),
    keys: T.Optional(
      T.Array(Jwk, { minItems: 1, description: "Keys written here, e.g. for offline development." }),
    ),
    cacheFor: T.Optional(
      duration("url only: how long fetched keys are used before they are fetched again (default 10m)."),
    ),
    timeout: T.Optional(duration("url only: the longest a fetch may take (default 5s, at most 60s).")),
    cooldown: T.Optional(
      duration(
        "url only: after a token names a key the set lacks, the set is fetched again at most this often (default 30s).",
      ),
    ),
  },
  { ...strict, description: "Where the verification keys come from: exactly one of url, file or keys." },
);

export const JwtSource = T.Object(
  {
    name: T.Optional(name("Names this source in routes' identity lists and in subjects (default jwt).")),
    issuer: T.String({
      minLength: 1,
      maxLength: 512,
      description: "The exact `iss` a token must carry; it also picks this source for a token.",
    }),
    audience: T.Union([T.String({ minLength: 1 }), T.Array(T.String({ minLength: 1 }), { minItems: 1 })], {
      description: "`aud` must contain one of these.",
    }),
    // Checked by check.ts, which can say why `none` or an unknown name is refused; `enum` serves editors.
    algorithms: T.Array(T.String({ enum: [...JWT_ALGORITHMS] }), {
      minItems: 1,
      description:
        "Signature algorithms accepted. All asymmetric (RS, PS, ES, EdDSA) or all HS: a source never " +
        "mixes them, so a public key can never be used as a shared secret.",
    }),
    jwks: JwksSettings,
    tenantClaim: T.Optional({
      ...ClaimPath,
      description: "The claim that names the tenant, by id or by one of its externalIds (default sub).",
    }),
    subjectClaim: T.Optional({
      ...ClaimPath,
      description: "The claim that names who is calling, for per-key limits and usage rows (default sub).",
    }),
    planClaim: T.Optional(
      T.Object(
        {
          claim: ClaimPath,
          plans: T.Record(T.String({ minLength: 1, maxLength: 128 }), name("A plan."), {
            description: "Claim value → plan. A value not listed is refused (401).",
          }),
        },
        { ...strict, description: "A claim that picks the plan the request is judged by." },
      ),
    ),
    scopeClaim: T.Optional({
      ...ClaimPath,
      description: "A claim with scopes (space-separated, or a list) that rules can require with scope:.",
    }),
    forwardClaims: T.Optional(
      T.Array(ClaimPath, {
        maxItems: 32,
        description: "Claims sent to upstreams that set tenantContext: true, in X-Gatehouse-Context.",
      }),
    ),
    maxLifetime: T.Optional(
      duration("Tokens valid for longer than this (exp minus iat, or minus now) are refused (default 1d)."),
    ),
    clockSkew: T.Optional(duration("Tolerance for exp, nbf and iat (default 30s, at most 60s).")),
  },
  { ...strict, description: "A bearer JSON Web Token, verified." },
);

export const IdentitySource = T.Union(
  [
    T.Object(
      {
        apiKey: T.Object(
          { name: T.Optional(name("Names this source in routes' identity lists (default apiKey).")) },
          strict,
        ),
      },
      { ...strict, description: "An API key in Authorization: Bearer or X-API-Key." },
    ),
    T.Object({ jwt: JwtSource }, strict),
    T.Object(
      {
        subdomain: T.String({
          description:
            "A Host pattern whose {tenant} label names the tenant, e.g. {tenant}.api.example.com. " +
            "It only names: a credential must prove the same tenant.",
          examples: ["{tenant}.api.example.com"],
        }),
      },
      strict,
    ),
    T.Object(
      {
        pathPrefix: T.String({
          description:
            "A path prefix whose {tenant} segment names the tenant, e.g. /t/{tenant}. It is removed before " +
            "routing, from the canonical path. It only names: a credential must prove the same tenant.",
          examples: ["/t/{tenant}"],
        }),
      },
      strict,
    ),
    T.Object(
      {
        header: T.String({
          pattern: "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$",
          description: "A request header that names the tenant. It only names: a credential must prove it.",
        }),
      },
      strict,
    ),
  ],
  { description: "One place the tenant of a request comes from." },
);

export const Identity = T.Array(IdentitySource, {
  minItems: 1,
  description:
    "Where the tenant of a request comes from, in order (default: [{ apiKey: {} }]). Credentials " +
    "(apiKey, jwt) prove a tenant; subdomain, pathPrefix and header only name one, which must agree.",
});

export const RouteIdentity = T.Array(name("A credential source of identity:."), {
  minItems: 1,
  description: "The credential sources (by name) this route accepts; default: all of identity:.",
});

export const TenantIn = T.Object(
  {
    query: T.Optional(
      T.String({ pattern: "^[A-Za-z0-9_.-]+$", description: "A query parameter that must name the tenant." }),
    ),
    header: T.Optional(
      T.String({
        pattern: "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$",
        description: "A header that must name the tenant.",
      }),
    ),
  },
  {
    ...strict,
    description:
      "Besides a :tenant path segment, where this route's requests name their tenant. Each must be present " +
      "and name the authenticated tenant, or the answer is 404.",
  },
);

/** An external id: 1 to 200 visible ASCII characters, no spaces. */
export const EXTERNAL_ID_PATTERN = "^[!-~]{1,200}$";

export const ExternalIds = T.Array(
  T.String({ pattern: EXTERNAL_ID_PATTERN, description: "Visible ASCII, no spaces." }),
  {
    maxItems: 50,
    description: "Other names of the tenant that a JWT claim may carry (unique across tenants).",
  },
);

export const Scope = T.String({
  pattern: "^[!#-\\[\\]-~]{1,128}$",
  description: "The rule applies only to requests whose token carries this scope.",
  examples: ["reports:read"],
});

export type IdentityDecl = Static<typeof Identity>;
export type IdentitySourceDecl = Static<typeof IdentitySource>;
export type JwtSourceDecl = Static<typeof JwtSource>;
export type JwkDecl = Static<typeof Jwk>;
export type TenantInDecl = Static<typeof TenantIn>;
