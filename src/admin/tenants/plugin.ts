import { Elysia } from "elysia";
import { actorOf } from "../client-ip.ts";
import { NoContent, TenantIdParams } from "../fields.ts";
import { DEFAULT_PAGE, decodeCursor, PageQuery } from "../pagination.ts";
import { responses } from "../problem.ts";
import { CreateTenantBody, PatchTenantBody, TenantPage, TenantView } from "./model.ts";
import type { TenantService } from "./service.ts";

const tags = ["tenants"];

export const tenantsPlugin = (tenants: TenantService) =>
  new Elysia({ normalize: false })
    .get("/tenants", ({ query }) => tenants.list(query.limit ?? DEFAULT_PAGE, decodeCursor(query.cursor)), {
      query: PageQuery,
      response: responses({ 200: TenantPage }, [400]),
      detail: {
        summary: "List tenants",
        description: "Ordered by id, `limit` per page.",
        operationId: "listTenants",
        tags,
      },
    })
    .post(
      "/tenants",
      async ({ body, request, status }) => status(201, await tenants.create(body, actorOf(request))),
      {
        parse: "json",
        body: CreateTenantBody,
        response: responses({ 201: TenantView }, [400, 409, 413]),
        detail: {
          summary: "Create a tenant",
          operationId: "createTenant",
          description:
            "The plan and any upstream names must exist in the running config. The tenant serves traffic " +
            "from the next request on and survives restarts and config reloads.",
          tags,
        },
      },
    )
    .get("/tenants/:id", ({ params }) => tenants.get(params.id), {
      params: TenantIdParams,
      response: responses({ 200: TenantView }, [400, 404]),
      detail: { summary: "Get a tenant", operationId: "getTenant", tags },
    })
    .patch("/tenants/:id", ({ params, body, request }) => tenants.update(params.id, body, actorOf(request)), {
      parse: "json",
      params: TenantIdParams,
      body: PatchTenantBody,
      response: responses({ 200: TenantView }, [400, 404, 409, 413]),
      detail: {
        summary: "Change a tenant",
        operationId: "updateTenant",
        description:
          "Changes plan, name, metadata, limits, rules, quota, concurrency, upstreams or disabled " +
          "(`disabled: true` disables it: its keys fail from the next request on). Tenants declared " +
          "in the config file are read-only: 409 names the file and line.",
        tags,
      },
    })
    .delete(
      "/tenants/:id",
      async ({ params, request, status }) => {
        await tenants.remove(params.id, actorOf(request));
        return status(204, undefined);
      },
      {
        params: TenantIdParams,
        response: responses({ 204: NoContent }, [400, 404, 409]),
        detail: { summary: "Delete a tenant and its keys", operationId: "deleteTenant", tags },
      },
    );
