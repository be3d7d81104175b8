/** The portal's API reference is the config's routes cut down to what the tenant's rules allow. */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { portalDocument } from "../../src/ui/portal/openapi.ts";
import { startTestGateway, type TestGateway } from "../support/gateway.ts";

const YAML = `version: 1
upstreams:
  sandbox: { mock: echo }
plans:
  reader:
    rules:
      - allow: GET /v1/**
      - deny: "* /v1/admin/**"
      - deny: "GET /v1/private"
  writer:
    rules:
      - allow: "POST,PUT /v1/items/:id"
      - { allow: "GET /v1/flags", headers: { x-beta: { equals: "1" } } }
routes:
  - match: "* /v1/**"
    upstream: sandbox
  - match: POST /v1/reports/**
    upstream: sandbox
    cost: 10
  - match: "GET /t/:tenant/items"
    upstream: sandbox
  - match: "* /internal/**"
    upstream: sandbox
tenants:
  acme: { plan: reader, rules: [{ allow: "GET /t/:tenant/items" }] }
  globex: { plan: writer }
`;

let gw: TestGateway;
beforeAll(() => {
  gw = startTestGateway(YAML);
});
afterAll(() => gw.close());

// biome-ignore lint/suspicious/noExplicitAny: the document is arbitrary JSON
const docFor = (tenant: string): any =>
  portalDocument(gw.state.snapshot, gw.state.snapshot.tenants.get(tenant)!, "http://127.0.0.1:8080");

const operations = (doc: { paths: Record<string, Record<string, unknown>> }) =>
  Object.entries(doc.paths)
    .flatMap(([path, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${path}`))
    .sort();

test("keeps each route's methods and paths the tenant's allows reach, and nothing else", () => {
  expect(operations(docFor("acme"))).toEqual(["GET /t/acme/items", "GET /v1/{path}"]);
  expect(operations(docFor("globex"))).toEqual([
    "GET /v1/flags",
    "POST /v1/items/{id}",
    "PUT /v1/items/{id}",
  ]);
});

test("names what a partial deny refuses, and the conditions an allow needs", () => {
  const acme = docFor("acme");
  expect(acme.paths["/v1/{path}"].get.description).toContain("Except * /v1/admin/**, which is refused.");
  expect(acme.paths["/v1/{path}"].get.description).toContain("Except GET /v1/private, which is refused.");
  const globex = docFor("globex");
  expect(globex.paths["/v1/flags"].get.description).toContain("needs the header x-beta to be 1");
  expect(globex.paths["/v1/items/{id}"].post.parameters).toEqual([
    expect.objectContaining({ name: "id", in: "path", required: true }),
  ]);
});

test("a route's :tenant segment is the tenant's own id, and the servers entry is the data plane", () => {
  const acme = docFor("acme");
  expect(acme.paths["/t/acme/items"].get.parameters).toEqual([]);
  expect(acme.servers).toEqual([{ url: "http://127.0.0.1:8080", description: "The API gateway." }]);
  expect(JSON.stringify(docFor("globex"))).not.toContain("/internal");
});
