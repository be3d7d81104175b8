/**
 * Tenants named by the Host, a path prefix or a header, and tenant-scoped routes, over raw sockets.
 * A name never authenticates: the key must prove the same tenant, and when it does not the answer
 * is byte for byte the stranger's (request id aside), and nothing reaches the upstream.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startTestGateway, type TestGateway } from "../support/gateway.ts";
import { rawRequest } from "../support/raw-http.ts";
import { type RecordingUpstream, startUpstream } from "../support/upstream.ts";

let up: RecordingUpstream;
let gw: TestGateway;
let port: number;
const ACME = "X-API-Key: acme-secret-0001";

const config = (upstream: string) => `version: 1
identity:
  - apiKey: {}
  - subdomain: "{tenant}.api.example.test"
  - pathPrefix: /t/{tenant}
  - header: X-Tenant
upstreams:
  up: { url: "${upstream}" }
plans:
  basic:
    rules:
      - allow: "* /v1/**"
      - deny: "* /v1/admin/**"
routes:
  - { match: "* /v1/**", upstream: up }
  - { match: "GET /v1/orgs/:tenant/**", upstream: up }
  - { match: "GET /v1/search", upstream: up, tenantIn: { query: org, header: X-Org } }
tenants:
  acme:
    plan: basic
    externalIds: [org_acme]
    keys: [{ id: acme-key, secret: acme-secret-0001 }]
  globex:
    plan: basic
    keys: [{ id: globex-key, secret: globex-secret-0001 }]
`;

beforeAll(() => {
  up = startUpstream();
  gw = startTestGateway(config(up.url));
  port = Number(new URL(gw.dataUrl).port);
});
afterAll(async () => {
  await gw.close();
  await up.stop();
});

const raw = (target: string, headers: string[]) =>
  rawRequest(port, [`GET ${target} HTTP/1.1`, ...headers, "Connection: close", "", ""].join("\r\n"));
const problem = (body: string) => {
  const { request_id: _, ...rest } = JSON.parse(body) as Record<string, unknown>;
  return rest;
};
/** Sends and checks: served (with the upstream seeing `path`), or refused exactly like `like`. */
async function served(target: string, headers: string[], path: string) {
  const before = up.received.length;
  const res = await raw(target, headers);
  expect(res.status).toBe(200);
  expect(up.received.length).toBe(before + 1);
  const got = up.received.at(-1)!;
  expect(got.target).toBe(path);
  expect(got.headers["x-gatehouse-tenant"]).toBe("acme");
}
async function refusedLike(target: string, headers: string[], like: Record<string, unknown>) {
  const before = up.received.length;
  const res = await raw(target, headers);
  expect(res.status).toBe(like.status as number);
  expect(problem(res.body)).toEqual(like);
  expect(up.received.length).toBe(before);
}

let stranger: Record<string, unknown>;
let noRoute: Record<string, unknown>;
beforeAll(async () => {
  stranger = problem(
    (await raw("/v1/items", ["Host: acme.api.example.test", "X-API-Key: nobody-0000"])).body,
  );
  noRoute = problem((await raw("/nothing/here", ["Host: gw.test", ACME])).body);
  expect(stranger.status).toBe(401);
  expect(noRoute.status).toBe(404);
});

describe("subdomain", () => {
  test("the Host names the tenant; port, case and a trailing dot do not change which", async () => {
    for (const host of [
      "acme.api.example.test",
      "acme.api.example.test:8080",
      "ACME.Api.Example.TEST",
      "acme.api.example.test.",
      "AcMe.api.example.test.:443",
    ]) {
      await served("/v1/items", [`Host: ${host}`, ACME], "/v1/items");
    }
  });

  test("another tenant's host with acme's key is the stranger's 401", async () => {
    for (const host of [
      "globex.api.example.test",
      "GLOBEX.api.example.test.:80",
      "initech.api.example.test",
    ]) {
      await refusedLike("/v1/items", [`Host: ${host}`, ACME], stranger);
    }
  });

  test("an absolute-form target cannot name a tenant beside the Host", async () => {
    // Bun judges the Host header; the target's authority is dropped, so it names nothing.
    await served(
      "http://globex.api.example.test/v1/items",
      ["Host: acme.api.example.test", ACME],
      "/v1/items",
    );
    await refusedLike(
      "http://acme.api.example.test/v1/items",
      ["Host: globex.api.example.test", ACME],
      stranger,
    );
  });

  test("a Host that is not exactly one host is a 400, whatever the key", async () => {
    for (const hosts of [
      ["Host: acme.api.example.test", "Host: globex.api.example.test"],
      ["Host: acme.api.example.test, globex.api.example.test"],
      ["Host: user@acme.api.example.test"],
      ["Host: acme.api.example.test/x"],
    ]) {
      const before = up.received.length;
      const res = await raw("/v1/items", [...hosts, ACME]);
      expect(res.status).toBe(400);
      expect(up.received.length).toBe(before);
    }
  });

  test("a Host outside the pattern names no tenant: the key alone decides", async () => {
    await served("/v1/items", ["Host: api.example.test", ACME], "/v1/items");
    await served("/v1/items", ["Host: acme.globex.api.example.test.evil", ACME], "/v1/items");
    await served("/v1/items", ["Host: 127.0.0.1:9", ACME], "/v1/items");
  });
});

describe("path prefix", () => {
  test("/t/{tenant} names the tenant and is removed before routing and rules", async () => {
    await served("/t/acme/v1/items?x=1", ["Host: gw.test", ACME], "/v1/items?x=1");
    await served("/t/org_acme/v1/items", ["Host: gw.test", ACME], "/v1/items");
    await served("/t/%61cme/v1/items", ["Host: gw.test", ACME], "/v1/items");
    await served("/%74/acme/v1/items", ["Host: gw.test", ACME], "/v1/items");
    // Dot segments are resolved first: these name acme after all.
    await served("/t/globex/../acme/v1/items", ["Host: gw.test", ACME], "/v1/items");
    await served("/t/./acme/v1/./items", ["Host: gw.test", ACME], "/v1/items");
  });

  test("another tenant's prefix with acme's key is the stranger's 401, in every spelling", async () => {
    for (const target of [
      "/t/globex/v1/items",
      "/t/acme/../globex/v1/items",
      "/t/%67lobex/v1/items",
      "/t/ACME/v1/items",
      "/t/initech/v1/items",
      "/t//globex/v1/items",
    ]) {
      await refusedLike(target, ["Host: gw.test", ACME], stranger);
    }
  });

  test("the prefix is removed after normalizing, so it cannot smuggle a path past the rules", async () => {
    const denied = problem((await raw("/v1/admin/users", ["Host: gw.test", ACME])).body);
    expect(denied.status).toBe(403);
    for (const target of [
      "/t/acme/v1/admin/users",
      "/t/acme/v1/items/../admin/users",
      "/t/acme/%2e%2e/%2e%2e/v1/admin/users",
      "/t/acme/v1/ADMIN/users",
    ]) {
      await refusedLike(target, ["Host: gw.test", ACME], denied);
    }
    for (const target of ["/t/acme%2Fv1/items", "/t/acme/v1%2Fadmin/users", "/t/acme;x/v1/items"]) {
      const res = await raw(target, ["Host: gw.test", ACME]);
      expect(res.status).toBe(400);
    }
  });
});

describe("header", () => {
  test("X-Tenant names the tenant; any spelling naming another is the stranger's 401", async () => {
    await served("/v1/items", ["Host: gw.test", "X-Tenant: acme", ACME], "/v1/items");
    await refusedLike("/v1/items", ["Host: gw.test", "X-Tenant: globex", ACME], stranger);
    await refusedLike("/v1/items", ["Host: gw.test", "X-Tenant: acme", "X_Tenant: globex", ACME], stranger);
    await refusedLike("/v1/items", ["Host: gw.test", "X-Tenant: acme", "X-Tenant: globex", ACME], stranger);
  });

  test("every name must agree: host, prefix and header together", async () => {
    await served(
      "/t/acme/v1/items",
      ["Host: acme.api.example.test", "X-Tenant: org_acme", ACME],
      "/v1/items",
    );
    await refusedLike(
      "/t/acme/v1/items",
      ["Host: globex.api.example.test", "X-Tenant: acme", ACME],
      stranger,
    );
  });
});

describe("tenant-scoped routes", () => {
  test(":tenant must be the authenticated tenant, else the 404 of a path that does not exist", async () => {
    await served("/v1/orgs/acme/projects", ["Host: gw.test", ACME], "/v1/orgs/acme/projects");
    await served("/v1/orgs/org_acme/projects", ["Host: gw.test", ACME], "/v1/orgs/org_acme/projects");
    await served("/v1/orgs/%61cme/projects", ["Host: gw.test", ACME], "/v1/orgs/acme/projects");
    for (const target of ["/v1/orgs/globex/projects", "/v1/orgs/ACME/projects", "/v1/orgs/nobody/projects"]) {
      await refusedLike(target, ["Host: gw.test", ACME], noRoute);
    }
  });

  test("tenantIn: the query parameter and header must each name the tenant", async () => {
    const h = ["Host: gw.test", ACME, "X-Org: acme"];
    await served("/v1/search?org=acme", h, "/v1/search?org=acme");
    await served("/v1/search?org=org_acme&q=x", h, "/v1/search?org=org_acme&q=x");
    for (const q of [
      "",
      "?q=x",
      "?org=globex",
      "?org=acme&org=globex",
      "?org=acme&ORG=globex",
      "?org%5B%5D=globex&org=acme",
      "?org=acme&or%67=globex",
    ]) {
      await refusedLike(`/v1/search${q}`, h, noRoute);
    }
    await refusedLike("/v1/search?org=acme", ["Host: gw.test", ACME], noRoute);
    await refusedLike("/v1/search?org=acme", ["Host: gw.test", ACME, "X-Org: globex"], noRoute);
    await refusedLike(
      "/v1/search?org=acme",
      ["Host: gw.test", ACME, "X-Org: acme", "X_Org: globex"],
      noRoute,
    );
  });
});

describe("explain", () => {
  const explain = async (body: Record<string, unknown>) => {
    const r = await fetch(`${gw.adminUrl}/explain`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    expect(r.status).toBe(200);
    // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON answers
    return (await r.json()) as Record<string, any>;
  };

  test("shows which tenant the host and prefix name, and why a mismatch or a scoped route refuses", async () => {
    const ok = await explain({
      key: "acme-key",
      method: "GET",
      path: "/t/acme/v1/orgs/acme/x",
      headers: { host: "ACME.api.example.test" },
    });
    expect(ok.outcome).toBe("forwarded");
    expect(ok.request.path).toBe("/v1/orgs/acme/x");
    expect(ok.identity).toEqual({
      source: "apiKey",
      named: [
        { source: "subdomain", value: "acme", agrees: true },
        { source: "pathPrefix", value: "acme", agrees: true },
      ],
      scopes: [],
      outOfScope: null,
    });

    const mismatch = await explain({ key: "acme-key", method: "GET", path: "/t/globex/v1/items" });
    expect(mismatch.refusedBy).toBe("auth");
    expect(mismatch.status).toBe(401);
    expect(mismatch.detail).toBe('The pathPrefix names tenant "globex", but the credential proves another.');

    const scoped = await explain({ key: "acme-key", method: "GET", path: "/v1/orgs/globex/x" });
    expect(scoped.refusedBy).toBe("tenant-scope");
    expect(scoped.status).toBe(404);
    expect(scoped.identity.outOfScope).toBe("the path's :tenant segment names another tenant");

    const badHost = await explain({
      key: "acme-key",
      method: "GET",
      path: "/v1/items",
      headers: { host: "a, b" },
    });
    expect(badHost.refusedBy).toBe("identity");
    expect(badHost.status).toBe(400);
  });
});
