/**
 * Corrections to what @elysiajs/openapi generates, applied to the spec before it is served:
 * - error responses are application/problem+json, not application/json;
 * - a 204 has no content (the plugin writes an invalid `content: { type: "void" }`);
 * - a body whose fields are all optional may be left out (`required: false`);
 * - GET /export answers YAML;
 * - every operation behind the guard lists the guard's own answers (401, 415, 421, 429, and 403 for
 *   methods that change something), whoever wrote it.
 */
import { Problem } from "../problem.ts";

type Obj = Record<string, unknown>;

const YAML_ROUTES = new Set(["/export"]);

const GUARD = [
  ["401", "Unauthorized (problem+json)"],
  ["415", "A request body that is not application/json (problem+json)"],
  ["421", "A Host that does not name this listener (problem+json)"],
  ["429", "Too Many Requests (problem+json)"],
] as const;

const CROSS_SITE = ["403", "A change sent by another site's web page (problem+json)"] as const;

const obj = (v: unknown): Obj | undefined =>
  v && typeof v === "object" && !Array.isArray(v) ? (v as Obj) : undefined;

export function fixSpec(spec: Obj): Obj {
  for (const [path, item] of Object.entries(obj(spec.paths) ?? {})) {
    for (const [method, value] of Object.entries(obj(item) ?? {})) {
      const op = obj(value);
      const responses = obj(op?.responses);
      if (!op || !responses) continue;
      // `security: []` marks the one route the guard lets through (GET /healthz).
      const open = Array.isArray(op.security) && op.security.length === 0;
      if (!open) {
        const writes = method !== "get" && method !== "head";
        for (const [status, description] of writes ? [...GUARD, CROSS_SITE] : GUARD) {
          responses[status] ??= { description, content: { "application/json": { schema: Problem } } };
        }
      }
      for (const [status, value] of Object.entries(responses)) {
        const response = obj(value);
        const content = obj(response?.content);
        if (!response || !content) continue;
        const code = Number(status);
        if (code === 204) delete response.content;
        else if (code >= 400 && content["application/json"]) {
          response.content = { "application/problem+json": content["application/json"] };
        } else if (code === 200 && YAML_ROUTES.has(path) && content["text/plain"]) {
          response.content = { "application/yaml": content["text/plain"] };
        }
      }
      const body = obj(op.requestBody);
      const schema = obj(obj(obj(body?.content)?.["application/json"])?.schema);
      if (body && schema && !(schema.required as unknown[] | undefined)?.length && !schema.minProperties) {
        body.required = false;
      }
    }
  }
  return spec;
}
