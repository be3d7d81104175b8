import { Type as T } from "@sinclair/typebox";
import { Elysia } from "elysia";
import { actorOf } from "../client-ip.ts";
import { KeyIdParams, TenantIdParams } from "../fields.ts";
import { responses } from "../problem.ts";
import { CreditQuotaBody, QuotaState, ResetQuotaBody } from "./model.ts";
import type { QuotaService } from "./service.ts";

const tags = ["quota"];

const RESET =
  "Sets used to 0 in the current period of the named quota, or of every one this route addresses when " +
  "no name is given. Effective from the next request; audited.";
const SHARED =
  " In cluster mode (cluster.redis) the counts are the ones all nodes share, read and changed in Redis: " +
  "503 while it cannot be reached.";
const CREDIT =
  "Gives units back in the current period: used goes down by `units`, never below 0, so a credit never " +
  "raises the limit itself and does not carry over to the next period. Effective from the next request; " +
  "audited. `quota` may be left out when only one quota applies.";

export const quotaPlugin = (quotas: QuotaService) =>
  new Elysia({ normalize: false })
    .get("/tenants/:id/quota", ({ params }) => quotas.ofTenant(params.id), {
      params: TenantIdParams,
      response: responses({ 200: QuotaState }, [400, 404, 503]),
      detail: {
        summary: "A tenant's quota counts",
        description:
          "Used, remaining and when the period resets, for every quota its keys share (by: tenant). " +
          `Quotas that count each key on its own are read per key: GET /keys/{id}/quota.${SHARED}`,
        operationId: "getTenantQuota",
        tags,
      },
    })
    .post(
      "/tenants/:id/quota/reset",
      ({ params, body, request }) => quotas.reset("tenant", params.id, body?.quota, actorOf(request)),
      {
        parse: "json",
        params: TenantIdParams,
        body: T.Optional(ResetQuotaBody),
        response: responses({ 200: QuotaState }, [400, 404, 413, 503]),
        detail: {
          summary: "Reset a tenant's quota",
          description: RESET + SHARED,
          operationId: "resetTenantQuota",
          tags,
        },
      },
    )
    .post(
      "/tenants/:id/quota/credit",
      ({ params, body, request }) =>
        quotas.credit("tenant", params.id, body.quota, body.units, actorOf(request)),
      {
        parse: "json",
        params: TenantIdParams,
        body: CreditQuotaBody,
        response: responses({ 200: QuotaState }, [400, 404, 413, 503]),
        detail: {
          summary: "Credit a tenant's quota",
          description: CREDIT + SHARED,
          operationId: "creditTenantQuota",
          tags,
        },
      },
    )
    .get("/keys/:id/quota", ({ params }) => quotas.ofKey(params.id), {
      params: KeyIdParams,
      response: responses({ 200: QuotaState }, [400, 404, 503]),
      detail: {
        summary: "A key's quota counts",
        description:
          "Every quota the key's requests count against: the ones its tenant's keys share (by: tenant) and " +
          `the ones it keeps alone (by: key).${SHARED}`,
        operationId: "getKeyQuota",
        tags,
      },
    })
    .post(
      "/keys/:id/quota/reset",
      ({ params, body, request }) => quotas.reset("key", params.id, body?.quota, actorOf(request)),
      {
        parse: "json",
        params: KeyIdParams,
        body: T.Optional(ResetQuotaBody),
        response: responses({ 200: QuotaState }, [400, 404, 409, 413, 503]),
        detail: {
          summary: "Reset a key's quota",
          description: `${RESET}${SHARED} A key's routes address the quotas it keeps alone; a shared one is reset through its tenant (409).`,
          operationId: "resetKeyQuota",
          tags,
        },
      },
    )
    .post(
      "/keys/:id/quota/credit",
      ({ params, body, request }) =>
        quotas.credit("key", params.id, body.quota, body.units, actorOf(request)),
      {
        parse: "json",
        params: KeyIdParams,
        body: CreditQuotaBody,
        response: responses({ 200: QuotaState }, [400, 404, 409, 413, 503]),
        detail: {
          summary: "Credit a key's quota",
          description: `${CREDIT}${SHARED} A key's routes address the quotas it keeps alone; a shared one is credited through its tenant (409).`,
          operationId: "creditKeyQuota",
          tags,
        },
      },
    );
