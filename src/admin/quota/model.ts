import { Type as T } from "@sinclair/typebox";
import { Identifier } from "../../config/schema.ts";
import { Timestamp } from "../fields.ts";
import { PolicyQuota } from "../policy/model.ts";

const strict = { additionalProperties: false } as const;

const QuotaName = T.String({
  pattern: "^[a-z0-9][a-z0-9_-]{0,31}$",
  description: "The quota's name, as in RateLimit headers and the policy; absent: see each route.",
});

export const QuotaUse = T.Object(
  {
    ...PolicyQuota.properties,
    used: T.Integer({ description: "Cost units counted in the current period." }),
    remaining: T.Integer({ description: "limit − used, never below 0." }),
    periodStart: Timestamp("When the current period began."),
    resetsAt: Timestamp("When the current period ends and the count starts again from 0."),
  },
  { ...strict, description: "A quota in force and its count in the current period." },
);

export const QuotaState = T.Object(
  {
    tenant: Identifier,
    key: T.Union([Identifier, T.Null()], {
      description: "The key, for a key's quotas; null for a tenant's.",
    }),
    quotas: T.Array(QuotaUse),
  },
  {
    ...strict,
    description:
      "For a tenant: the quotas its keys share (by: tenant). For a key: every quota its requests count " +
      "against, shared ones included.",
  },
);

export const ResetQuotaBody = T.Object(
  { quota: T.Optional(QuotaName) },
  {
    ...strict,
    description: "Which quota to reset; without a body or a name, every one the route addresses.",
  },
);

export const CreditQuotaBody = T.Object(
  {
    quota: T.Optional(QuotaName),
    units: T.Integer({
      minimum: 1,
      maximum: Number.MAX_SAFE_INTEGER,
      description: "Cost units to give back in the current period: used goes down by this, never below 0.",
    }),
  },
  {
    ...strict,
    description: "Units to give back; the quota may be left out when only one applies.",
    examples: [{ units: 100 }],
  },
);
