import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { createAdminApp } from "../../src/admin/app.ts";
import { isDashboardPage } from "../../src/ui/dashboard/sessions.ts";
import { type AdminFixture, adminFixture, concreteRoutes, expectProblem, TOKEN } from "./helpers.ts";

let f: AdminFixture;
beforeEach(() => {
  f = adminFixture();
});
afterEach(() => f.close());

const SAMPLE_TOKENS = [
  "changeme",
  "admin",
  "secret",
  "token",
  "test-token",
  "admin_token",
  "example",
  "password",
];

describe("the admin guard", () => {
  test("every route but GET /healthz answers 401 problem+json without a token", async () => {
    const routes = concreteRoutes(f).filter(
      ([m, p]) => !(m === "GET" && (p === "/healthz" || isDashboardPage(p))),
    );
    expect(routes.length).toBeGreaterThan(15);
    for (const [n, [method, path]] of routes.entries()) {
      // A fresh address per request keeps the throttle out of this test.
      const ip = `10.1.0.${n}`;
      const r = await f.call(method, path, { token: null, ip, body: method === "GET" ? undefined : {} });
      expectProblem(r, 401);
      expect(r.headers.get("www-authenticate")).toContain("Bearer");
    }
  });

  test("every route answers 401 to a wrong token and to every sample token", async () => {
    const routes = concreteRoutes(f).filter(
      ([m, p]) => !(m === "GET" && (p === "/healthz" || isDashboardPage(p))),
    );
    const tokens = [`${TOKEN}x`, TOKEN.slice(0, -1), ...SAMPLE_TOKENS];
    for (const [n, [method, path]] of routes.entries()) {
      for (const [i, token] of tokens.entries()) {
        const r = await f.call(method, path, { token, ip: `10.0.${i}.${n}` });
        expect(r.status).toBe(401);
      }
    }
    // Nothing was created or changed by any of those requests.
    expect((await f.call("GET", "/tenants")).json.items.map((t: { id: string }) => t.id)).toEqual([
      "acme",
      "globex",
    ]);
  });

  test("the token is accepted only as a Bearer Authorization header", async () => {
    expect((await f.call("GET", "/config")).status).toBe(200);
    const attempts: Record<string, string>[] = [
      { authorization: `Basic ${btoa(`admin:${TOKEN}`)}` },
      { authorization: `Bearer  ${TOKEN}` },
      { authorization: TOKEN },
      { "x-api-key": TOKEN },
    ];
    for (const headers of attempts) {
      expect((await f.call("GET", "/config", { token: null, headers })).status).toBe(401);
    }
    expect((await f.call("GET", `/config?token=${TOKEN}`, { token: null })).status).toBe(401);
  });

  test("unknown paths answer 401 before routing, and 404 problem+json once authenticated", async () => {
    expectProblem(await f.call("GET", "/no/such/route", { token: null }), 401);
    expectProblem(await f.call("GET", "/no/such/route"), 404);
  });

  test("GET /healthz needs no token", async () => {
    const r = await f.call("GET", "/healthz", { token: null });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ status: "ok" });
  });

  test("the app refuses to be built with a sample or short token", () => {
    for (const token of ["changeme", "admin-token", "short"]) {
      expect(() => createAdminApp({ token, state: f.state, database: f.database, clock: f.clock })).toThrow(
        /refusing/,
      );
    }
  });

  test("without a configured token (loopback only) requests pass", async () => {
    const open = adminFixture(undefined, { token: null });
    try {
      expect((await open.call("GET", "/tenants", { token: null })).status).toBe(200);
    } finally {
      open.close();
    }
  });
});

describe("bad token throttling", () => {
  test("ten wrong tokens never lock the right token out; that address's wrong guesses get 429", async () => {
    for (let i = 0; i < 10; i++) {
      expect((await f.call("GET", "/tenants", { token: "wrong-token-guess", ip: "192.0.2.7" })).status).toBe(
        401,
      );
      f.clock.advance(1000);
    }
    // The right token from the same address is served at once, and changes things.
    expect((await f.call("GET", "/tenants", { ip: "192.0.2.7" })).status).toBe(200);
    expect(
      (await f.call("POST", "/tenants", { ip: "192.0.2.7", body: { id: "still-in", plan: "free" } })).status,
    ).toBe(201);

    const limited = await f.call("GET", "/tenants", { token: "wrong-token-guess", ip: "192.0.2.7" });
    const problem = expectProblem(limited, 429);
    expect(problem.detail).not.toContain("wrong-token-guess");
    // The first failure was 10s ago: it leaves the window in 50s.
    expect(limited.headers.get("retry-after")).toBe("50");
    // So are requests without any token from that address; another address is not affected.
    expect((await f.call("GET", "/tenants", { token: null, ip: "192.0.2.7" })).status).toBe(429);
    expect((await f.call("GET", "/tenants", { token: "wrong-token-guess", ip: "192.0.2.8" })).status).toBe(
      401,
    );

    // The right token keeps working throughout; the wrong guesses wait for the window.
    f.clock.advance(49_000);
    expect((await f.call("GET", "/tenants", { token: "wrong-token-guess", ip: "192.0.2.7" })).status).toBe(
      429,
    );
    expect((await f.call("GET", "/tenants", { ip: "192.0.2.7" })).status).toBe(200);
    f.clock.advance(1000);
    expect((await f.call("GET", "/tenants", { token: "wrong-token-guess", ip: "192.0.2.7" })).status).toBe(
      401,
    );
  });

  test("a spray of wrong tokens from many addresses keeps a bounded table and never blocks the operator", async () => {
    const sprayed = adminFixture(undefined, { throttle: { maxFailures: 2, maxClients: 50 } });
    try {
      const wrong = (ip: string) => sprayed.call("GET", "/config", { token: "spray-spray-spray", ip });
      for (let i = 0; i < 500; i++) {
        const ip = `198.51.${i >> 8}.${i & 255}`;
        expect([(await wrong(ip)).status, (await wrong(ip)).status, (await wrong(ip)).status]).toEqual([
          401, 401, 429,
        ]);
        expect((await sprayed.call("GET", "/config", { ip })).status).toBe(200);
      }
      // Only the 50 most recently failing addresses are remembered: the first one was forgotten.
      const first = "198.51.0.0";
      expect([(await wrong(first)).status, (await wrong(first)).status, (await wrong(first)).status]).toEqual(
        [401, 401, 429],
      );
    } finally {
      sprayed.close();
    }
  });

  test("failures spread over more than a minute are not throttled", async () => {
    for (let i = 0; i < 30; i++) {
      expect((await f.call("GET", "/config", { token: "nope-nope-nope", ip: "192.0.2.9" })).status).toBe(401);
      f.clock.advance(7000);
    }
    expect((await f.call("GET", "/config", { ip: "192.0.2.9" })).status).toBe(200);
  });

  test("GET /healthz is never throttled", async () => {
    for (let i = 0; i < 12; i++) await f.call("GET", "/tenants", { token: "bad-bad-bad", ip: "192.0.2.10" });
    expect((await f.call("GET", "/healthz", { token: null, ip: "192.0.2.10" })).status).toBe(200);
  });
});
