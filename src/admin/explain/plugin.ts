import { Elysia } from "elysia";
import { badRequest, responses } from "../problem.ts";
import { ExplainBody, Explanation } from "./model.ts";
import type { ExplainService } from "./service.ts";

export const explainPlugin = (service: ExplainService) =>
  new Elysia({ normalize: false }).post(
    "/explain",
    ({ body }) => {
      const given = [body.key, body.tenant, body.token].filter((v) => v !== undefined).length;
      if (given !== 1) {
        throw badRequest("Give exactly one of key (a key id), tenant (a tenant id) or token (a JWT).");
      }
      return service.explain(body);
    },
    {
      parse: "json",
      body: ExplainBody,
      response: responses({ 200: Explanation }, [400, 404, 413]),
      detail: {
        summary: "Explain a request",
        description:
          "Judges a request as the data plane would at this moment, without forwarding or counting it: " +
          "the canonical path, tenant and key, the route, every rule that matched, every limit and quota " +
          "with its count and what this request would do to it, and the outcome with its problem type. " +
          "Unlike the data plane, it says why a credential would fail.",
        operationId: "explainRequest",
        tags: ["explain"],
      },
    },
  );
