/**
 * What a plan declares and what is in force for a tenant or key, each item with where it is declared.
 * Item shapes are shared by GET /plans, the effective policies and the quota state.
 */
import { Type as T } from "@sinclair/typebox";
import { Identifier } from "../../config/schema.ts";

const strict = { additionalProperties: false } as const;

export const DeclaredAt = T.String({
  description: "Where it is declared, as a config path.",
  examples: ["plans.free.limits[0]"],
});

export const SourceRef = T.Union([T.String(), T.Null()], {
  description:
    '"gateway.yaml:15" while the config file holds the config in force, "control API" for what was made ' +
    "there, null when it cannot be told (the file changed since it was loaded).",
});

export const Origin = T.Union([T.Literal("plan"), T.Literal("tenant"), T.Literal("key")], {
  description: "Who declares it: the tenant's plan, the tenant itself, or the key.",
});

const Counts = T.Union([T.Literal("tenant"), T.Literal("key")], {
  description: "tenant: all the tenant's keys share one count; key: each key counts on its own.",
});

const Period = T.Union([T.Literal("hour"), T.Literal("day"), T.Literal("month")]);

export const PolicyLimit = T.Object(
  {
    name: T.String({ description: "Its name in RateLimit headers." }),
    limit: T.Integer({ description: "Cost units admitted in any interval of length window." }),
    window: T.String({ examples: ["1s"] }),
    by: Counts,
    origin: Origin,
    declaredAt: DeclaredAt,
    source: SourceRef,
  },
  { ...strict, description: "A sliding-window limit in force." },
);

export const PolicyQuota = T.Object(
  {
    name: T.String({ description: "Its name in RateLimit headers." }),
    limit: T.Integer({ description: "Cost units admitted per period." }),
    period: Period,
    anchor: T.Integer({ description: "Day of the month a monthly period starts on." }),
    timezone: T.String({ description: "IANA time zone the period boundaries follow." }),
    by: Counts,
    origin: Origin,
    declaredAt: DeclaredAt,
    source: SourceRef,
  },
  { ...strict, description: "A quota in force." },
);

export const PolicyRule = T.Object(
  {
    effect: T.Union([T.Literal("allow"), T.Literal("deny")]),
    pattern: T.String({ examples: ["GET /v1/**"] }),
    origin: Origin,
    declaredAt: DeclaredAt,
    source: SourceRef,
  },
  { ...strict, description: "A path rule in force." },
);

export const PolicyConcurrency = T.Object(
  {
    limit: T.Integer({ description: "Most requests of the tenant in flight at once." }),
    origin: Origin,
    declaredAt: DeclaredAt,
    source: SourceRef,
  },
  { ...strict, description: "The tenant's cap on requests in flight." },
);

export const EffectivePolicy = T.Object(
  {
    tenant: Identifier,
    key: T.Union([Identifier, T.Null()], {
      description: "The key, for a key's policy; null for a tenant's.",
    }),
    plan: Identifier,
    limits: T.Array(PolicyLimit, {
      description: "Every one must pass: the plan's, the tenant's, the key's.",
    }),
    quotas: T.Array(PolicyQuota),
    rules: T.Array(PolicyRule, {
      description: "Default deny: a request passes when some allow matches and no deny does.",
    }),
    concurrency: T.Union([PolicyConcurrency, T.Null()]),
  },
  {
    ...strict,
    description:
      "What is in force for a tenant's requests (or one key's): its plan's policies merged with its own " +
      "(and the key's), as the data plane applies them, each with where it is declared.",
  },
);
