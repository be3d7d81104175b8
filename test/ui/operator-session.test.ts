/**
 * The operator's browser session on the control API: signing in with the token, the cookie standing in
 * for it, CSRF on every change, sign-out, and what the dashboard's pages may show without either.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type AdminFixture, adminFixture, dumpState, expectProblem } from "../admin/helpers.ts";

let f: AdminFixture;
beforeAll(() => {
  f = adminFixture();
});
afterAll(() => f.close());

async function signIn(headers: Record<string, string> = {}) {
  const r = await f.call("POST", "/ui/api/session", { headers });
  expect(r.status).toBe(201);
  const cookie = r.headers.get("set-cookie")!;
  const id = /^gatehouse_admin=([^;]+);/.exec(cookie)![1]!;
  return { cookie, id, csrf: r.json.csrf as string, header: `gatehouse_admin=${id}` };
}

const asBrowser = (cookie: string, extra: Record<string, string> = {}) => ({
  token: null,
  headers: { cookie, origin: "http://localhost", "sec-fetch-site": "same-origin", ...extra },
});

describe("signing in", () => {
  test("the token opens a session: an httpOnly, SameSite=Strict cookie, Secure only over https", async () => {
    const { cookie, csrf } = await signIn();
    expect(cookie).toMatch(
      /^gatehouse_admin=[A-Za-z0-9_-]{43}; Path=\/; Max-Age=43200; HttpOnly; SameSite=Strict$/,
    );
    expect(csrf).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const secure = await signIn({ "x-forwarded-proto": "https" });
    expect(secure.cookie).toEndWith("; Secure");
  });

  test("no token, no session: a wrong one is refused (and counted like any wrong token)", async () => {
    const r = await f.call("POST", "/ui/api/session", { token: "k7Qm2xVb9LpR4tZw8NcY3hJdX", ip: "10.9.0.1" });
    expectProblem(r, 401);
    expect(r.headers.get("set-cookie")).toBeNull();
  });

  test("a session cannot open another one: only the token can", async () => {
    const s = await signIn();
    const r = await f.call("POST", "/ui/api/session", asBrowser(s.header, { "x-csrf-token": s.csrf }));
    expectProblem(r, 400);
  });
});

describe("the session cookie in place of the token", () => {
  test("reads need only the cookie, /docs included", async () => {
    const s = await signIn();
    expect((await f.call("GET", "/tenants", asBrowser(s.header))).status).toBe(200);
    expect((await f.call("GET", "/docs", asBrowser(s.header))).status).toBe(200);
    const info = await f.call("GET", "/ui/api/session", asBrowser(s.header));
    expect(info.json).toEqual(expect.objectContaining({ mode: "token", csrf: s.csrf }));
  });

  test("every change needs the session's CSRF token as well; without it nothing changes", async () => {
    const s = await signIn();
    const before = dumpState(f);
    const body = { id: "csrf-victim", plan: "free" };
    const missing = await f.call("POST", "/tenants", { ...asBrowser(s.header), body });
    expect(expectProblem(missing, 403).type).toBe("urn:gatehouse:problem:csrf-token-required");
    const wrong = await f.call("POST", "/tenants", {
      ...asBrowser(s.header, { "x-csrf-token": `${s.csrf}x` }),
      body,
    });
    expectProblem(wrong, 403);
    const other = await signIn();
    const borrowed = await f.call("POST", "/tenants", {
      ...asBrowser(s.header, { "x-csrf-token": other.csrf }),
      body,
    });
    expectProblem(borrowed, 403);
    for (const [method, path] of [
      ["DELETE", "/tenants/acme"],
      ["POST", "/config/reload"],
      ["DELETE", "/ui/api/session"],
    ] as const) {
      expectProblem(await f.call(method, path, asBrowser(s.header)), 403);
    }
    expect(dumpState(f)).toBe(before);
    const ok = await f.call("POST", "/tenants", { ...asBrowser(s.header, { "x-csrf-token": s.csrf }), body });
    expect(ok.status).toBe(201);
  });

  test("another site's page is refused even with the cookie and the CSRF token", async () => {
    const s = await signIn();
    const before = dumpState(f);
    const foreign: Record<string, string>[] = [
      { origin: "http://evil.example" },
      { "sec-fetch-site": "same-site" },
    ];
    for (const extra of foreign) {
      const r = await f.call("POST", "/tenants", {
        ...asBrowser(s.header, { "x-csrf-token": s.csrf, ...extra }),
        body: { id: "cross-site", plan: "free" },
      });
      expect(expectProblem(r, 403).type).toBe("urn:gatehouse:problem:cross-site-request");
    }
    expect(dumpState(f)).toBe(before);
  });

  test("signing out ends the session at once", async () => {
    const s = await signIn();
    const out = await f.call("DELETE", "/ui/api/session", asBrowser(s.header, { "x-csrf-token": s.csrf }));
    expect(out.status).toBe(204);
    expect(out.headers.get("set-cookie")).toStartWith(
      "gatehouse_admin=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict",
    );
    expectProblem(await f.call("GET", "/tenants", asBrowser(s.header)), 401);
  });

  test("the session expires when idle, and at the latest after 12 hours", async () => {
    const idle = await signIn();
    f.clock.advance(31 * 60_000);
    expectProblem(await f.call("GET", "/tenants", asBrowser(idle.header)), 401);

    const busy = await signIn();
    for (let i = 0; i < 12 * 4 - 1; i++) {
      f.clock.advance(15 * 60_000);
      expect((await f.call("GET", "/config", asBrowser(busy.header))).status).toBe(200);
    }
    f.clock.advance(15 * 60_000);
    expectProblem(await f.call("GET", "/config", asBrowser(busy.header)), 401);
  });

  test("a session opened under another admin token is refused", async () => {
    const other = adminFixture(undefined, { token: "another-long-admin-token-1234" });
    try {
      const r = await other.call("POST", "/ui/api/session");
      const cookie = /^(gatehouse_admin=[^;]+);/.exec(r.headers.get("set-cookie")!)![1]!;
      // The same database file would be shared across a restart with a new token; here the row is copied.
      const row = other.database.sqlite.query("SELECT * FROM ui_sessions").get() as Record<string, unknown>;
      f.database.sqlite
        .query(
          "INSERT INTO ui_sessions VALUES ($id_hash, $kind, $tenant_id, $token_tag, $created_at, $last_seen_at, $expires_at)",
        )
        .run(Object.fromEntries(Object.entries(row).map(([k, v]) => [`$${k}`, v])) as never);
      expectProblem(await f.call("GET", "/tenants", asBrowser(cookie)), 401);
    } finally {
      other.close();
    }
  });

  test("a portal session's cookie opens nothing on the control API", async () => {
    const { SessionStore } = await import("../../src/ui/sessions/store.ts");
    const portal = new SessionStore(f.database, f.clock).open("portal", { tenantId: "acme" });
    for (const cookie of [`gatehouse_portal=${portal.id}`, `gatehouse_admin=${portal.id}`]) {
      expectProblem(await f.call("GET", "/tenants", asBrowser(cookie)), 401);
    }
  });
});

describe("the dashboard's pages", () => {
  test("load without a token, hold no data, and forbid inline code, other hosts and framing", async () => {
    for (const path of ["/ui", "/ui/sign-in", "/ui/tenants/acme"]) {
      const r = await f.call("GET", path, { token: null });
      expect(r.status).toBe(200);
      expect(r.headers.get("content-type")).toBe("text/html; charset=utf-8");
      expect(r.text).not.toContain("acme");
      expect(r.text).not.toContain("<style");
      expect(r.text).not.toMatch(/<script(?![^>]*\bsrc=)/);
      const csp = r.headers.get("content-security-policy")!;
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("style-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toContain("unsafe");
      expect(r.headers.get("x-frame-options")).toBe("DENY");
    }
    const js = await f.call("GET", "/ui/assets/dashboard.js", { token: null });
    expect(js.status).toBe(200);
    expect(js.headers.get("content-type")).toContain("javascript");
    expect((await f.call("GET", "/ui/assets/nope.js", { token: null, ip: "10.9.0.2" })).status).toBe(401);
  });

  test("its own requests need the token or a session like the rest of the API", async () => {
    for (const path of ["/ui/api/session", "/ui/api/overview", "/ui/api/tenants/acme/refusals"]) {
      expectProblem(await f.call("GET", path, { token: null, ip: "10.9.0.3" }), 401);
    }
  });
});

describe("without an admin token (loopback)", () => {
  test("the dashboard needs no sign-in, and the Host check still applies", async () => {
    const open = adminFixture(undefined, { token: null });
    try {
      const info = await open.call("GET", "/ui/api/session");
      expect(info.json).toEqual(expect.objectContaining({ mode: "open", csrf: null }));
      expectProblem(await open.call("POST", "/ui/api/session"), 409);
      expectProblem(await open.call("GET", "/ui", { headers: { host: "evil.example" } }), 421);
      expectProblem(await open.call("GET", "/ui/api/overview", { headers: { host: "evil.example" } }), 421);
    } finally {
      open.close();
    }
  });
});

test("session ids never reach the audit log", async () => {
  const s = await signIn();
  await f.call("POST", "/tenants", {
    ...asBrowser(s.header, { "x-csrf-token": s.csrf }),
    body: { id: "audited", plan: "free" },
  });
  const audit = JSON.stringify(f.database.sqlite.query("SELECT * FROM audit_log").all());
  expect(audit).toContain("audited");
  expect(audit).not.toContain(s.id);
  expect(audit).not.toContain(s.csrf);
});
