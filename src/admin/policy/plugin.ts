import { Elysia } from "elysia";
import { KeyIdParams, TenantIdParams } from "../fields.ts";
import { responses } from "../problem.ts";
import { EffectivePolicy } from "./model.ts";
import type { PolicyService } from "./service.ts";

const tags = ["policy"];

export const policyPlugin = (policy: PolicyService) =>
  new Elysia({ normalize: false })
    .get("/tenants/:id/policy", ({ params }) => policy.forTenant(params.id), {
      params: TenantIdParams,
      response: responses({ 200: EffectivePolicy }, [400, 404]),
      detail: {
        summary: "The policy in force for a tenant",
        description:
          "Its plan's limits, quotas, rules and concurrency merged with its own, as the data plane applies " +
          "them to every one of its keys, each saying where it is declared. A key may add its own: see the " +
          "key's policy.",
        operationId: "getTenantPolicy",
        tags,
      },
    })
    .get("/keys/:id/policy", ({ params }) => policy.forKey(params.id), {
      params: KeyIdParams,
      response: responses({ 200: EffectivePolicy }, [400, 404]),
      detail: {
        summary: "The policy in force for a key",
        description:
          "Its tenant's policy plus the key's own limits, quotas and rules, each saying where it is declared.",
        operationId: "getKeyPolicy",
        tags,
      },
    });
