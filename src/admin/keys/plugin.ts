import { Type as T } from "@sinclair/typebox";
import { Elysia } from "elysia";
import { actorOf } from "../client-ip.ts";
import { KeyIdParams, NoContent, TenantIdParams } from "../fields.ts";
import { DEFAULT_PAGE, decodeCursor, PageQuery } from "../pagination.ts";
import { responses } from "../problem.ts";
import { CreateKeyBody, KeyPage, KeyView, KeyWithSecret, PatchKeyBody, RotateKeyBody } from "./model.ts";
import type { KeyService } from "./service.ts";

const tags = ["keys"];

export const keysPlugin = (keys: KeyService) =>
  new Elysia({ normalize: false })
    .post(
      "/tenants/:id/keys",
      async ({ params, body, request, status }) =>
        status(201, await keys.create(params.id, body ?? {}, actorOf(request))),
      {
        parse: "json",
        params: TenantIdParams,
        body: T.Optional(CreateKeyBody),
        response: responses({ 201: KeyWithSecret }, [400, 404, 409, 413]),
        detail: {
          summary: "Create a key",
          operationId: "createKey",
          description:
            "Generates a key (ghk_ prefix, checksummed) and returns its secret this once; only its hash " +
            "is stored. Keys may be created for tenants declared in the config file; such keys belong " +
            "to the API.",
          tags,
        },
      },
    )
    .get(
      "/tenants/:id/keys",
      ({ params, query }) =>
        keys.listForTenant(params.id, query.limit ?? DEFAULT_PAGE, decodeCursor(query.cursor)),
      {
        params: TenantIdParams,
        query: PageQuery,
        response: responses({ 200: KeyPage }, [400, 404]),
        detail: {
          summary: "List a tenant's keys",
          description: "Never returns secrets or hashes.",
          operationId: "listKeys",
          tags,
        },
      },
    )
    .get("/keys/:id", ({ params }) => keys.get(params.id), {
      params: KeyIdParams,
      response: responses({ 200: KeyView }, [400, 404]),
      detail: { summary: "Get a key", operationId: "getKey", tags },
    })
    .patch("/keys/:id", ({ params, body, request }) => keys.update(params.id, body, actorOf(request)), {
      parse: "json",
      params: KeyIdParams,
      body: PatchKeyBody,
      response: responses({ 200: KeyView }, [400, 404, 409, 413]),
      detail: {
        summary: "Change a key",
        description:
          "Changes its name, metadata, expiry or disabled (`disabled: true` disables it). Effective from " +
          "the next request. Keys declared in the config file are read-only (409).",
        operationId: "updateKey",
        tags,
      },
    })
    .post(
      "/keys/:id/rotate",
      ({ params, body, request }) => keys.rotate(params.id, body ?? {}, actorOf(request)),
      {
        parse: "json",
        params: KeyIdParams,
        body: T.Optional(RotateKeyBody),
        response: responses({ 200: KeyWithSecret }, [400, 404, 409, 413]),
        detail: {
          summary: "Rotate a key",
          description:
            "Returns a new secret this once. The previous secret keeps working for gracePeriod " +
            '(default 24h, at most 7d), then fails. For a leaked key send `{"gracePeriod": "0s"}`: the ' +
            "leaked secret fails from the next request on, and only the new one works.",
          operationId: "rotateKey",
          tags,
        },
      },
    )
    .post("/keys/:id/end-grace", ({ params, request }) => keys.endGrace(params.id, actorOf(request)), {
      params: KeyIdParams,
      response: responses({ 200: KeyView }, [400, 404, 409]),
      detail: {
        summary: "End a rotation's grace period",
        description:
          "The previous secret fails from the next request on; the current one keeps working. A key with " +
          "no previous secret is left as it is.",
        operationId: "endKeyGrace",
        tags,
      },
    })
    .delete(
      "/keys/:id",
      async ({ params, request, status }) => {
        await keys.revoke(params.id, actorOf(request));
        return status(204, undefined);
      },
      {
        params: KeyIdParams,
        response: responses({ 204: NoContent }, [400, 404, 409]),
        detail: {
          summary: "Revoke a key",
          operationId: "revokeKey",
          description: "Both its secrets fail from the next request on.",
          tags,
        },
      },
    );
