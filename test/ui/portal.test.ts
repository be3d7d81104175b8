/**
 * The tenant portal on its own listener, with a test-mode gateway: one-time links, sessions, and that
 * a tenant sees and changes only its own objects whatever ids it sends (every portal route).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startTestGateway, type TestGateway } from "../support/gateway.ts";

const TOKEN = "k7Qm2xVb9LpR4tZw8NcY3hJd";
const YAML = `version: 1
server:
  adminToken: ${TOKEN}
  portal: 127.0.0.1:0
upstreams:
  sandbox: { mock: echo }
plans:
  free:
    quota: { limit: 100, period: day }
    portal: { maxKeys: 2 }
    rules:
      - allow: GET /v1/**
      - deny: "* /v1/admin/**"
  closed:
    rules:
      - allow: GET /v1/status
routes:
  - match: "* /v1/**"
    upstream: sandbox
  - match: POST /v1/reports/**
    upstream: sandbox
    cost: 10
tenants:
  acme:
    name: Acme Corp
    plan: free
    keys:
      - { id: acme-dev, secret: acme-secret-0001 }
  globex:
    plan: closed
    keys:
      - { id: globex-dev, secret: globex-secret-0001 }
`;

let gw: TestGateway;
beforeAll(() => {
  gw = startTestGateway(YAML, { testClockStart: Date.parse("2026-01-15T12:00:00Z") });
});
afterAll(() => gw.close());

const admin = (method: string, path: string, body?: unknown) =>
  fetch(`${gw.adminUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body ? { "content-type": "application/json" } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });

async function link(tenant: string, body?: unknown): Promise<string> {
  const r = await admin("POST", `/tenants/${tenant}/portal-links`, body);
  expect(r.status).toBe(201);
  return ((await r.json()) as { url: string }).url;
}

interface Portal {
  cookie: string;
  csrf: string;
  call(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Response>;
}

async function signIn(tenant: string): Promise<Portal> {
  const url = await link(tenant);
  const token = url.slice(url.indexOf("#") + 1);
  const r = await fetch(`${gw.portalUrl}/api/session`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ token }),
  });
  expect(r.status).toBe(201);
  const cookie = /^(gatehouse_portal=[^;]+);/.exec(r.headers.get("set-cookie")!)![1]!;
  const { csrf } = (await r.json()) as { csrf: string };
  return {
    cookie,
    csrf,
    call: (method, path, body, headers = {}) =>
      fetch(`${gw.portalUrl}${path}`, {
        method,
        headers: {
          cookie,
          ...(method === "GET" ? {} : { "x-csrf-token": csrf }),
          ...(body === undefined ? {} : { "content-type": "application/json" }),
          ...headers,
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      }),
  };
}

const moveClock = (advance: string) =>
  admin("POST", "/clock", { advance }).then((r) => expect(r.status).toBe(200));

describe("sign-in links", () => {
  test("POST /tenants/{id}/portal-links mints a one-time link on the portal's address", async () => {
    const url = await link("acme", { expiresIn: "5m" });
    expect(url).toMatch(new RegExp(`^${gw.portalUrl}/sign-in#[A-Za-z0-9_-]{43}$`));
    const token = url.split("#")[1]!;
    const redeem = () =>
      fetch(`${gw.portalUrl}/api/session`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ token }),
      });
    const first = await redeem();
    expect(first.status).toBe(201);
    expect(first.headers.get("set-cookie")).toMatch(
      /^gatehouse_portal=[A-Za-z0-9_-]{43}; Path=\/; Max-Age=28800; HttpOnly; SameSite=Strict$/,
    );
    expect((await redeem()).status).toBe(401);
    // The audit log records the link, never its secret.
    const audit = await (await admin("GET", "/audit?limit=200")).text();
    expect(audit).toContain("portal.link");
    expect(audit).not.toContain(token);
  });

  test("an unused link stops working when it expires", async () => {
    const token = (await link("acme")).split("#")[1]!;
    await moveClock("16m");
    const r = await fetch(`${gw.portalUrl}/api/session`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ token }),
    });
    expect(r.status).toBe(401);
  });

  test("unknown tenants and out-of-range lifetimes are refused", async () => {
    expect((await admin("POST", "/tenants/nobody/portal-links")).status).toBe(404);
    expect((await admin("POST", "/tenants/acme/portal-links", { expiresIn: "25h" })).status).toBe(400);
    expect((await admin("POST", "/tenants/acme/portal-links", { expiresIn: "10s" })).status).toBe(400);
  });

  test("without server.portal there is nothing to link to (409)", async () => {
    const plain = startTestGateway(YAML.replace("  portal: 127.0.0.1:0\n", ""));
    try {
      expect(plain.portalUrl).toBeNull();
      const r = await fetch(`${plain.adminUrl}/tenants/acme/portal-links`, {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      expect(r.status).toBe(409);
      expect(((await r.json()) as { detail: string }).detail).toContain("server.portal");
    } finally {
      await plain.close();
    }
  });

  test("DELETE /tenants/{id}/portal-sessions ends the tenant's sessions and unused links, no one else's", async () => {
    const acme = await signIn("acme");
    const globex = await signIn("globex");
    const unused = (await link("acme")).split("#")[1]!;
    const r = await admin("DELETE", "/tenants/acme/portal-sessions");
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ tenant: "acme", links: 1, sessions: expect.any(Number) });
    expect((await acme.call("GET", "/api/keys")).status).toBe(401);
    expect((await globex.call("GET", "/api/keys")).status).toBe(200);
    const late = await fetch(`${gw.portalUrl}/api/session`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ token: unused }),
    });
    expect(late.status).toBe(401);
  });
});

describe("a portal session", () => {
  test("ends after 30 idle minutes (test mode's clock)", async () => {
    const p = await signIn("acme");
    await moveClock("29m");
    expect((await p.call("GET", "/api/session")).status).toBe(200);
    await moveClock("31m");
    expect((await p.call("GET", "/api/session")).status).toBe(401);
  });

  test("ends when its tenant is disabled", async () => {
    const made = await admin("POST", "/tenants", { id: "initech", plan: "free" });
    expect(made.status).toBe(201);
    const p = await signIn("initech");
    expect((await admin("PATCH", "/tenants/initech", { disabled: true })).status).toBe(200);
    expect((await p.call("GET", "/api/keys")).status).toBe(401);
  });

  test("cannot reach the control API, and the portal serves none of its routes", async () => {
    const p = await signIn("acme");
    for (const path of ["/tenants", "/ui/api/overview", "/config"]) {
      const r = await fetch(`${gw.adminUrl}${path}`, { headers: { cookie: p.cookie } });
      expect(r.status).toBe(401);
    }
    for (const path of ["/tenants", "/keys/acme-dev", "/usage", "/openapi.json", "/ui"]) {
      expect((await p.call("GET", path)).status).toBe(404);
    }
  });

  test("every change needs its CSRF token, and is refused from another site's page", async () => {
    const p = await signIn("acme");
    const before = await (await p.call("GET", "/api/keys")).text();
    const noToken = await fetch(`${gw.portalUrl}/api/keys`, {
      method: "POST",
      headers: { cookie: p.cookie, "content-type": "application/json" },
      body: "{}",
    });
    expect(noToken.status).toBe(403);
    const crossSite = await p.call("POST", "/api/keys", {}, { origin: "http://evil.example" });
    expect(crossSite.status).toBe(403);
    const form = await fetch(`${gw.portalUrl}/api/keys`, {
      method: "POST",
      headers: { cookie: p.cookie, "x-csrf-token": p.csrf, "content-type": "text/plain" },
      body: '{"name":"sent as text"}',
    });
    expect(form.status).toBe(415);
    expect(await (await p.call("GET", "/api/keys")).text()).toBe(before);
  });
});

describe("a tenant sees and changes only its own objects", () => {
  test("keys: a key of another tenant is not found, on every key route", async () => {
    const acme = await signIn("acme");
    const globexKey = (await (await admin("POST", "/tenants/globex/keys", { name: "theirs" })).json()) as {
      key: { id: string };
    };
    const id = globexKey.key.id;
    const attempts: [string, string, unknown?][] = [
      ["PATCH", `/api/keys/${id}`, { disabled: true }],
      ["POST", `/api/keys/${id}/rotate`, {}],
      ["POST", `/api/keys/${id}/end-grace`],
      ["DELETE", `/api/keys/${id}`],
      ["PATCH", `/api/keys/${encodeURIComponent("../keys/globex-dev")}`, { disabled: true }],
    ];
    for (const [method, path, body] of attempts) {
      const r = await acme.call(method, path, body);
      expect(`${method} ${path} ${r.status}`).toBe(`${method} ${path} 404`);
    }
    const theirs = (await (await admin("GET", `/keys/${id}`)).json()) as { disabled: boolean };
    expect(theirs.disabled).toBe(false);
    const listed = (await (await acme.call("GET", "/api/keys")).json()) as { items: { id: string }[] };
    expect(listed.items.map((k) => k.id)).not.toContain(id);
    expect(listed.items.map((k) => k.id)).not.toContain("globex-dev");
  });

  test("usage, refusals, quota, limits and docs are the session's tenant's, and no parameter names another", async () => {
    const acme = await signIn("acme");
    await fetch(`${gw.dataUrl}/v1/items`, { headers: { "x-api-key": "acme-secret-0001" } });
    await fetch(`${gw.dataUrl}/v1/items`, { headers: { "x-api-key": "globex-secret-0001" } });
    await fetch(`${gw.dataUrl}/v1/status`, { headers: { "x-api-key": "globex-secret-0001" } });
    const usage = (await (
      await acme.call("GET", "/api/usage?groupBy=key&to=2026-01-16T00:00:00Z")
    ).json()) as {
      tenant: string;
      groups: { group: string }[];
    };
    expect(usage.tenant).toBe("acme");
    expect(
      usage.groups.map((g) => g.group),
      JSON.stringify(usage),
    ).toEqual(["acme-dev"]);
    const refusals = (await (await acme.call("GET", "/api/refusals")).json()) as { items: unknown[] };
    expect(refusals.items).toEqual([]);
    for (const path of [
      "/api/usage?tenant=globex",
      "/api/refusals?tenant=globex",
      "/api/usage?from=1&from=2",
    ]) {
      expect((await acme.call("GET", path)).status).toBe(400);
    }
    const quota = (await (await acme.call("GET", "/api/quota")).json()) as {
      tenant: string;
      quotas: unknown[];
    };
    expect(quota.tenant).toBe("acme");
    const policy = await (await acme.call("GET", "/api/policy")).text();
    expect(policy).toContain('"tenant":"acme"');
    expect(policy).not.toContain("gateway.yaml");
    const doc = (await (await acme.call("GET", "/api/openapi.json")).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    expect(Object.keys(doc.paths).sort()).toEqual(["/v1/{path}"]);
  });

  test("creates keys up to its plan's portal.maxKeys; they are API-made keys of the tenant", async () => {
    const p = await signIn("acme");
    const held = ((await (await p.call("GET", "/api/keys")).json()) as { items: unknown[] }).items.length;
    expect(held).toBe(1);
    const made = await p.call("POST", "/api/keys", { name: "laptop" });
    expect(made.status).toBe(201);
    const { key, secret } = (await made.json()) as { key: { id: string; managed: boolean }; secret: string };
    expect(secret).toMatch(/^ghk_/);
    expect(key.managed).toBe(true);
    const seen = (await (await admin("GET", `/keys/${key.id}`)).json()) as {
      tenantId: string;
      source: string;
    };
    expect(seen).toEqual(expect.objectContaining({ tenantId: "acme", source: "api" }));
    expect((await fetch(`${gw.dataUrl}/v1/items`, { headers: { "x-api-key": secret } })).status).toBe(200);
    const over = await p.call("POST", "/api/keys", { name: "one too many" });
    expect(over.status).toBe(409);
    // The key from the config file is shown but is the operator's to change.
    expect((await p.call("POST", "/api/keys/acme-dev/rotate", {})).status).toBe(409);
    const audit = await (await admin("GET", "/audit?limit=200")).text();
    expect(audit).toContain('"actor":"portal:acme"');
  });

  test("pages and assets carry a strict CSP; the docs page allows only inline styles on top", async () => {
    for (const path of ["/", "/sign-in", "/assets/portal.js"]) {
      const r = await fetch(`${gw.portalUrl}${path}`);
      expect(r.status).toBe(200);
      expect(r.headers.get("content-security-policy")).not.toContain("unsafe");
      expect(r.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    }
    const docs = await fetch(`${gw.portalUrl}/docs`);
    const csp = docs.headers.get("content-security-policy")!;
    expect(csp).toContain("script-src 'self';");
    expect(csp).toContain("style-src 'self' 'unsafe-inline'");
  });
});
