import { Elysia } from "elysia";
import { actorOf } from "../client-ip.ts";
import { NoContent } from "../fields.ts";
import { DEFAULT_PAGE, decodeCursor, PageQuery } from "../pagination.ts";
import { responses } from "../problem.ts";
import { CredentialPage, CredentialView, NameParams, PutCredentialBody } from "./model.ts";
import type { CredentialService } from "./service.ts";

const tags = ["credentials"];

export const credentialsPlugin = (credentials: CredentialService) =>
  new Elysia({ normalize: false })
    .get(
      "/credentials",
      ({ query }) => credentials.list(query.limit ?? DEFAULT_PAGE, decodeCursor(query.cursor)),
      {
        query: PageQuery,
        response: responses({ 200: CredentialPage }, [400]),
        detail: {
          summary: "List credentials",
          description: "Names, descriptions, times and what uses each one; never a value.",
          operationId: "listCredentials",
          tags,
        },
      },
    )
    .put(
      "/credentials/:name",
      async ({ params, body, request, status }) => {
        const { created, credential } = await credentials.put(params.name, body, actorOf(request));
        return created ? status(201, credential) : credential;
      },
      {
        parse: "json",
        params: NameParams,
        body: PutCredentialBody,
        response: responses({ 200: CredentialView, 201: CredentialView }, [400, 409, 413]),
        detail: {
          summary: "Store a credential",
          description:
            "Creates the credential (201) or replaces its value (200). The value is encrypted with the " +
            "master key and can never be read back; upstream headers and tenants refer to it by name, " +
            "and the next request carries the new value. 409 when gatehouse has no master key.",
          operationId: "putCredential",
          tags,
        },
      },
    )
    .get("/credentials/:name", ({ params }) => credentials.get(params.name), {
      params: NameParams,
      response: responses({ 200: CredentialView }, [400, 404]),
      detail: {
        summary: "Get a credential's metadata",
        description: "Never its value.",
        operationId: "getCredential",
        tags,
      },
    })
    .delete(
      "/credentials/:name",
      async ({ params, request, status }) => {
        await credentials.remove(params.name, actorOf(request));
        return status(204, undefined);
      },
      {
        params: NameParams,
        response: responses({ 204: NoContent }, [400, 404, 409]),
        detail: {
          summary: "Delete a credential",
          description: "Refused (409, naming them) while an upstream header or a tenant uses it.",
          operationId: "deleteCredential",
          tags,
        },
      },
    );
