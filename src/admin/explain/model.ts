import { Type as T } from "@sinclair/typebox";
import { Identifier } from "../../config/schema.ts";

const strict = { additionalProperties: false } as const;
const Nullable = <S extends ReturnType<typeof T.String>>(s: S) => T.Union([s, T.Null()]);
const Source = T.Union([T.String(), T.Null()], {
  description:
    '"gateway.yaml:15" for a declaration in the file in force, "control API" for one made there, null ' +
    "when the file changed since it was loaded.",
});

export const ExplainBody = T.Object(
  {
    key: T.Optional({ ...Identifier, description: "Explain as this key (its id)." }),
    tenant: T.Optional({
      ...Identifier,
      description: "Or as a new key of this tenant: no policies of its own, per-key counts at zero.",
    }),
    token: T.Optional(
      T.String({
        maxLength: 8192,
        description: "Or as this bearer JWT, verified as the data plane would (its keys may be fetched).",
      }),
    ),
    method: T.String({ pattern: "^[A-Za-z][A-Za-z-]{0,31}$", examples: ["GET"] }),
    path: T.String({
      pattern: "^/",
      maxLength: 8192,
      description: "Path and query.",
      examples: ["/v1/items"],
    }),
    headers: T.Optional(
      T.Record(T.String({ pattern: "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$" }), T.String({ maxLength: 8192 }), {
        description: "Request headers, e.g. content-length for the body-size check.",
      }),
    ),
  },
  {
    ...strict,
    description:
      "A request to judge as the data plane would, without forwarding or counting it. Give key, tenant or token. " +
      "headers may carry a Host, and the path a prefix, that name a tenant.",
    examples: [{ key: "acme-dev", method: "GET", path: "/v1/items" }],
  },
);

const Mode = T.Union([T.Literal("enforce"), T.Literal("shadow")], {
  description: "shadow: judged and counted, never refusing; `refuses` then says whether it would.",
});

const Counter = T.Object(
  {
    kind: T.Union([T.Literal("window"), T.Literal("quota")]),
    name: T.String(),
    declaredAt: T.String({ examples: ["plans.free.limits[0]"] }),
    source: Source,
    limit: T.Integer(),
    per: T.Union([
      T.Integer({ description: "Window length in ms." }),
      T.String({ description: "Quota period." }),
    ]),
    by: T.Union([T.Literal("tenant"), T.Literal("key")]),
    mode: Mode,
    used: T.Integer({ description: "Cost units counted now." }),
    adds: T.Integer({
      description:
        "What this request would add (0 when it would be refused, or this shadow would refuse it).",
    }),
    refuses: T.Boolean({ description: "Whether this limit or quota alone would refuse the request." }),
    fitsInMs: T.Union([T.Number(), T.Null()], {
      description: "When it would admit the request if nothing else came first (0: now; null: never).",
    }),
    retryAfter: T.Union([T.Integer(), T.Null()], { description: "Retry-After it would give, in seconds." }),
    resetsAt: T.Union([T.Number(), T.Null()], { description: "A quota's period end, epoch ms." }),
  },
  strict,
);

export const Explanation = T.Object(
  {
    outcome: T.Union([T.Literal("forwarded"), T.Literal("refused")]),
    status: T.Union([T.Integer(), T.Null()], { description: "The refusal's status; null when forwarded." }),
    problem: Nullable(T.String({ description: "The refusal's problem type." })),
    detail: Nullable(T.String()),
    refusedBy: T.Union(
      [
        ...[
          "method",
          "path",
          "identity",
          "auth",
          "route",
          "tenant-scope",
          "rules",
          "body-size",
          "limits",
          "upstream",
        ].map((s) => T.Literal(s)),
        T.Null(),
      ],
      { description: "The first step of the chain that refuses." },
    ),
    request: T.Object(
      {
        method: T.String(),
        path: Nullable(T.String({ description: "The canonical path." })),
        query: T.String(),
      },
      strict,
    ),
    tenant: T.Union([T.Object({ id: T.String(), plan: T.String() }, strict), T.Null()]),
    key: T.Union([
      T.Object({ id: T.String({ description: "A key id, or jwt:<source>:<subject> for a token." }) }, strict),
      T.Null(),
    ]),
    identity: T.Object(
      {
        source: Nullable(T.String({ description: "The credential source that proved the tenant." })),
        named: T.Array(
          T.Object(
            {
              source: T.Union([T.Literal("subdomain"), T.Literal("pathPrefix"), T.Literal("header")]),
              value: T.String(),
              agrees: T.Boolean({ description: "Whether it names the tenant the credential proves." }),
            },
            strict,
          ),
          { description: "Tenants the Host, a path prefix or a header name." },
        ),
        scopes: T.Array(T.String(), { description: "Scopes the token carries." }),
        outOfScope: Nullable(
          T.String({ description: "Why a tenant-scoped route answers 404 (another tenant named)." }),
        ),
      },
      strict,
    ),
    route: T.Union([
      T.Object(
        {
          match: T.String(),
          declaredAt: T.String(),
          source: Source,
          upstream: T.String(),
          credentials: T.Array(T.String(), {
            description: "Names of the vault credentials the request would carry; never their values.",
          }),
          cost: T.Integer({ description: "Counted at admission; with costFrom, the least it costs." }),
          costFrom: T.Union(
            [
              T.Object({ header: T.String(), fallback: T.Integer() }, strict),
              T.Object({ json: T.String(), fallback: T.Integer() }, strict),
              T.Null(),
            ],
            {
              description:
                "Where the cost is read from the response when it ends; the fallback when it cannot be.",
            },
          ),
        },
        strict,
      ),
      T.Null(),
    ]),
    rules: T.Array(
      T.Object(
        {
          effect: T.Union([T.Literal("allow"), T.Literal("deny")]),
          mode: Mode,
          pattern: T.String(),
          declaredAt: T.String(),
          source: Source,
        },
        strict,
      ),
      { description: "Every rule that matched (its path and its header and query tests), in order." },
    ),
    limits: T.Array(Counter, { description: "Every limit and quota in force, with its count." }),
    concurrency: T.Union([
      T.Object({ limit: T.Integer(), inFlight: T.Integer(), refuses: T.Boolean() }, strict),
      T.Null(),
    ]),
    counters: T.Union(
      [
        T.Object(
          {
            decidedBy: T.Union(
              [
                T.Literal("memory", { description: "This node's own counters (no cluster)." }),
                T.Literal("redis", { description: "The counters all nodes share in Redis." }),
                T.Literal("local", {
                  description: "Redis is unreachable: this node's share of every limit, on its own counters.",
                }),
                T.Literal("open", { description: "Redis is unreachable: admitted without counting." }),
                T.Literal("closed", { description: "Redis is unreachable: refused with 503." }),
              ],
              { description: "Which counters decide the limits." },
            ),
            nodes: T.Union([T.Integer(), T.Null()], {
              description:
                "Live nodes as last seen in Redis (a local share divides by it); null without a cluster.",
            }),
          },
          strict,
        ),
        T.Null(),
      ],
      { description: "Where the limits are decided; null when the request does not reach them." },
    ),
    wouldRefuse: T.Array(
      T.Union([T.Literal("forbidden"), T.Literal("rate_limited"), T.Literal("quota_exhausted")]),
      {
        description:
          "Codes the shadow rules, limits and quotas would refuse this request with, when the enforced ones admit it.",
      },
    ),
  },
  { ...strict, description: "The whole decision, at the moment of the call." },
);
