import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { DOCS_PATH, SCALAR_PATH, SPEC_PATH } from "../../src/admin/docs/plugin.ts";
import { type AdminFixture, adminFixture } from "./helpers.ts";

let f: AdminFixture;
// biome-ignore lint/suspicious/noExplicitAny: the spec is arbitrary JSON
type Json = any;
let spec: Json;
beforeAll(async () => {
  f = adminFixture();
  const r = await f.call("GET", SPEC_PATH);
  expect(r.status).toBe(200);
  spec = r.json;
});
afterAll(() => f.close());

/** The routes that serve the documentation itself are the only ones the spec leaves out. */
const DOC_ROUTES = new Set([`GET ${DOCS_PATH}`, `GET ${SPEC_PATH}`, `GET ${SCALAR_PATH}`]);

const specPath = (p: string) => p.replace(/:([A-Za-z]+)/g, "{$1}");

/** A schema with its $ref followed into components/schemas. */
const resolve = (schema: Json): Json =>
  schema?.$ref ? spec.components.schemas[schema.$ref.slice("#/components/schemas/".length)] : schema;

/** Every schema object under `node`, nested ones included. */
function* schemasIn(node: Json): Generator<Json> {
  if (Array.isArray(node)) for (const n of node) yield* schemasIn(n);
  else if (node && typeof node === "object") {
    if (typeof node.type === "string" || Array.isArray(node.type) || node.anyOf || node.$ref) yield node;
    for (const v of Object.values(node)) yield* schemasIn(v);
  }
}

/** operationId of every operation, by "METHOD /path": stable names for generated clients. */
const OPERATION_IDS: Record<string, string> = {
  "GET /healthz": "getHealth",
  "GET /readyz": "getReadiness",
  "GET /metrics": "getMetrics",
  "GET /tenants": "listTenants",
  "POST /tenants": "createTenant",
  "GET /tenants/{id}": "getTenant",
  "PATCH /tenants/{id}": "updateTenant",
  "DELETE /tenants/{id}": "deleteTenant",
  "POST /tenants/{id}/keys": "createKey",
  "GET /tenants/{id}/keys": "listKeys",
  "GET /keys/{id}": "getKey",
  "PATCH /keys/{id}": "updateKey",
  "POST /keys/{id}/rotate": "rotateKey",
  "POST /keys/{id}/end-grace": "endKeyGrace",
  "DELETE /keys/{id}": "revokeKey",
  "GET /credentials": "listCredentials",
  "PUT /credentials/{name}": "putCredential",
  "GET /credentials/{name}": "getCredential",
  "DELETE /credentials/{name}": "deleteCredential",
  "GET /plans": "listPlans",
  "GET /tenants/{id}/policy": "getTenantPolicy",
  "GET /keys/{id}/policy": "getKeyPolicy",
  "GET /tenants/{id}/quota": "getTenantQuota",
  "POST /tenants/{id}/quota/reset": "resetTenantQuota",
  "POST /tenants/{id}/quota/credit": "creditTenantQuota",
  "GET /keys/{id}/quota": "getKeyQuota",
  "POST /keys/{id}/quota/reset": "resetKeyQuota",
  "POST /keys/{id}/quota/credit": "creditKeyQuota",
  "GET /config": "getConfig",
  "POST /config/reload": "reloadConfig",
  "GET /export": "exportConfig",
  "GET /audit": "listAudit",
  "GET /usage": "getUsage",
  "GET /usage/export": "exportUsage",
  "POST /explain": "explainRequest",
  "POST /tenants/{id}/portal-links": "createPortalLink",
  "DELETE /tenants/{id}/portal-sessions": "revokePortalSessions",
};

describe("GET /openapi.json", () => {
  test("documents every registered route, and nothing that is not one", () => {
    const registered = f.app.routes
      // The dashboard's pages and its own requests (/ui, src/ui/dashboard) are not part of the API.
      .filter((r) => !DOC_ROUTES.has(`${r.method} ${r.path}`) && !r.path.startsWith("/ui"))
      .map((r) => `${r.method.toLowerCase()} ${specPath(r.path)}`)
      .sort();
    const documented = Object.entries(spec.paths)
      .flatMap(([path, item]) => Object.keys(item as object).map((m) => `${m} ${path}`))
      .sort();
    expect(registered.length).toBeGreaterThanOrEqual(18);
    expect(documented).toEqual(registered);
  });

  test("every operation has a summary, tags, and a schema for every response status", () => {
    for (const [path, item] of Object.entries<Record<string, Json>>(spec.paths)) {
      for (const [method, op] of Object.entries<Json>(item)) {
        const where = `${method.toUpperCase()} ${path}`;
        expect(op.summary, where).toBeString();
        expect(op.tags?.length, where).toBeGreaterThan(0);
        const statuses = Object.keys(op.responses ?? {});
        expect(statuses.length, where).toBeGreaterThan(0);
        if (path !== "/healthz")
          expect(statuses, where).toEqual(expect.arrayContaining(["401", "415", "421", "429", "500"]));
        // The guard refuses cross-site requests that change something.
        if (method !== "get") expect(statuses, where).toContain("403");
        for (const status of statuses) {
          const response = op.responses[status];
          expect(response.description, `${where} ${status}`).toBeString();
          if (status === "204") {
            expect(response.content).toBeUndefined();
            continue;
          }
          const [type, media] = Object.entries<Json>(response.content)[0]!;
          expect(media.schema, `${where} ${status}`).toBeObject();
          if (Number(status) >= 400) {
            expect(type).toBe("application/problem+json");
            expect(media.schema).toEqual({ $ref: "#/components/schemas/Problem" });
            expect(resolve(media.schema).required).toEqual([
              "type",
              "title",
              "status",
              "detail",
              "request_id",
            ]);
          }
        }
      }
    }
  });

  test("every body route documents its request schema, and body schemas reject unknown fields", () => {
    for (const route of f.app.routes.filter(
      (r) => ["POST", "PATCH"].includes(r.method) && !r.path.startsWith("/ui"),
    )) {
      // These take no body.
      if (route.path === "/config/reload" || route.path.endsWith("/end-grace")) continue;
      const op = spec.paths[specPath(route.path)][route.method.toLowerCase()];
      const schema = resolve(op.requestBody?.content?.["application/json"]?.schema);
      expect(schema, `${route.method} ${route.path}`).toBeObject();
      expect(schema.additionalProperties, `${route.method} ${route.path}`).toBe(false);
    }
  });

  test("every operation has its stable operationId", () => {
    const ids = Object.fromEntries(
      Object.entries<Record<string, Json>>(spec.paths).flatMap(([path, item]) =>
        Object.entries<Json>(item).map(([method, op]) => [`${method.toUpperCase()} ${path}`, op.operationId]),
      ),
    );
    expect(ids).toEqual(OPERATION_IDS);
  });

  test("shapes are named components referred to with $ref, never inlined copies", () => {
    const names = Object.keys(spec.components.schemas);
    for (const name of [
      "Tenant",
      "TenantPage",
      "Key",
      "KeyWithSecret",
      "Limit",
      "Quota",
      "Rule",
      "Problem",
    ]) {
      expect(names).toContain(name);
    }
    // Every object shape an operation uses is a reference: a generator makes one type of each.
    for (const schema of schemasIn(spec.paths)) {
      expect(schema.properties, JSON.stringify(schema).slice(0, 200)).toBeUndefined();
    }
    const tenants = spec.paths["/tenants"];
    expect(tenants.post.requestBody.content["application/json"].schema).toEqual({
      $ref: "#/components/schemas/TenantCreate",
    });
    expect(tenants.post.responses["201"].content["application/json"].schema).toEqual({
      $ref: "#/components/schemas/Tenant",
    });
    expect(resolve({ $ref: "#/components/schemas/TenantPage" }).properties.items.items).toEqual({
      $ref: "#/components/schemas/Tenant",
    });
    // Within components too: a tenant's limits are Limits, a nullable quota a Quota or null.
    const tenant = spec.components.schemas.Tenant;
    expect(tenant.properties.limits.items).toEqual({ $ref: "#/components/schemas/Limit" });
    expect(tenant.properties.quota).toEqual({
      anyOf: [{ $ref: "#/components/schemas/Quota" }, { type: "null" }],
    });
    for (const ref of JSON.stringify(spec).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)) {
      expect(names).toContain(ref[1]!);
    }
  });

  test("answers declare their real content types", () => {
    const types = (path: string, status = "200") =>
      Object.keys(spec.paths[path].get.responses[status].content).sort();
    expect(types("/usage/export")).toEqual(["application/x-ndjson", "text/csv"]);
    expect(types("/export")).toEqual(["application/yaml"]);
    expect(types("/tenants")).toEqual(["application/json"]);
    expect(types("/tenants", "400")).toEqual(["application/problem+json"]);
  });

  test("an integer query parameter is an integer, not Elysia's string-or-integer coercion", () => {
    const limit = spec.paths["/tenants"].get.parameters.find((p: Json) => p.name === "limit");
    expect(limit.schema.type).toBe("integer");
    expect(limit.schema.anyOf).toBeUndefined();
  });

  test("names its servers and its licence (package.json's)", () => {
    expect(spec.info.license).toEqual({ name: "MIT", identifier: "MIT" });
    expect(spec.servers[0].url).toBe("http://{listener}");
    expect(spec.servers[0].variables.listener.default).toBe("127.0.0.1:8081");
  });

  test("documents the bearer scheme, and that /healthz needs none", () => {
    expect(spec.components.securitySchemes.adminToken).toEqual(
      expect.objectContaining({ type: "http", scheme: "bearer" }),
    );
    expect(spec.security).toEqual([{ adminToken: [] }]);
    expect(spec.paths["/healthz"].get.security).toEqual([]);
  });

  test("query parameters and path parameters carry their schemas", () => {
    const list = spec.paths["/tenants"].get.parameters;
    expect(list.map((p: { name: string }) => p.name).sort()).toEqual(["cursor", "limit"]);
    const id = spec.paths["/tenants/{id}"].get.parameters[0];
    expect(id).toEqual(expect.objectContaining({ name: "id", in: "path", required: true }));
    expect(id.schema.pattern).toBeString();
  });
});

describe("GET /docs", () => {
  test("renders a page that loads everything from this server, naming no outside host", async () => {
    const r = await f.call("GET", DOCS_PATH);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toContain("text/html");
    expect(r.text).toContain(`src="${SCALAR_PATH}"`);
    expect(r.text).not.toMatch(/https?:\/\//);
    expect(r.text).not.toMatch(/["'(]\/\/[a-z0-9]/i);
    // The bundled UI would load fonts from its CDN unless told not to.
    expect(r.text).toContain('"withDefaultFonts":false');
    // ...and would offer Scalar's hosted client, AI agent and toolbar.
    expect(r.text).toContain('"hideClientButton":true');
    expect(r.text).toContain('"agent":{"disabled":true}');
    expect(r.text).toContain('"showDeveloperTools":"never"');
  });

  test("serves the Scalar bundle itself", async () => {
    const r = await f.call("GET", SCALAR_PATH);
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toContain("javascript");
    expect(r.text.length).toBeGreaterThan(1_000_000);
    expect(r.text).toContain("@scalar/api-reference");
  });

  test("needs the admin token like everything else", async () => {
    for (const path of [DOCS_PATH, SPEC_PATH, SCALAR_PATH]) {
      expect((await f.call("GET", path, { token: null, ip: "198.51.100.1" })).status).toBe(401);
    }
  });
});
