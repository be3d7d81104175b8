import { Type as T } from "@sinclair/typebox";
import { Identifier, Limit, Quota } from "../../config/schema.ts";
import { DeclaredAt, SourceRef } from "../policy/model.ts";

const strict = { additionalProperties: false } as const;
const where = { declaredAt: DeclaredAt, source: SourceRef };

export const PlanView = T.Object(
  {
    name: Identifier,
    ...where,
    limits: T.Array(T.Object({ ...Limit.properties, ...where }, strict), {
      description: "Sliding-window limits as declared.",
    }),
    quota: T.Union([T.Object({ ...Quota.properties, ...where }, strict), T.Null()]),
    rules: T.Array(
      T.Object(
        { effect: T.Union([T.Literal("allow"), T.Literal("deny")]), pattern: T.String(), ...where },
        strict,
      ),
    ),
    concurrency: T.Union([T.Integer(), T.Null()], { description: "The in-flight cap per tenant, or null." }),
    tenants: T.Integer({ description: "How many tenants are on this plan." }),
  },
  { ...strict, description: "A plan as gateway.yaml declares it." },
);

export const PlanList = T.Object(
  { items: T.Array(PlanView, { description: "In the order the config file declares them." }) },
  { ...strict, description: "Every plan of the config in force." },
);
