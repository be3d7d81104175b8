/** Limits, quotas and concurrency through the real data plane: headers, 429 problems, restarts. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ManualClock } from "../../src/lib/clock.ts";
import { startTestGateway, type TestGateway } from "../support/gateway.ts";
import { type RecordingUpstream, startUpstream } from "../support/upstream.ts";

const config = (upstreamUrl: string) => `version: 1
upstreams:
  up: { url: "${upstreamUrl}" }
plans:
  metered:
    limits: [{ limit: 3, window: 10s, name: burst }]
    quota: { limit: 10, period: day, name: daily }
    concurrency: 1
    rules: [{ allow: "* /**" }]
routes:
  - { match: "* /v1/**", upstream: up }
  - { match: "POST /v1/reports", upstream: up, cost: 3 }
  - { match: "POST /v1/exports", upstream: up, cost: 50 }
tenants:
  acme:
    plan: metered
    keys: [{ id: a1, secret: acme-key-0001 }, { id: a2, secret: acme-key-0002 }]
  globex:
    plan: metered
    keys: [{ id: g1, secret: globex-key-0001 }]
`;

let up: RecordingUpstream;
let dir: string;
beforeAll(() => {
  up = startUpstream();
  dir = mkdtempSync(join(tmpdir(), "gatehouse-limits-"));
});
afterAll(async () => {
  await up.stop();
  rmSync(dir, { recursive: true, force: true });
});

const call = (gw: TestGateway, key: string, path = "/v1/items", init: RequestInit = {}) =>
  fetch(gw.dataUrl + path, { headers: { "x-api-key": key }, ...init });

describe("sliding-window limits through the gateway", () => {
  const clock = new ManualClock(Date.parse("2026-03-10T12:00:00Z"));
  let gw: TestGateway;
  beforeAll(() => {
    gw = startTestGateway(config(up.url), { clock });
  });
  afterAll(() => gw.close());

  test("proxied responses carry RateLimit-Policy and RateLimit", async () => {
    const res = await call(gw, "acme-key-0001");
    expect(res.status).toBe(200);
    expect(res.headers.get("ratelimit-policy")).toBe('"burst";q=3;w=10, "daily";q=10;w=86400');
    // A unit is counted until its 500 ms bucket has left the 10 s window, hence t=11.
    expect(res.headers.get("ratelimit")).toBe('"burst";r=2;t=11, "daily";r=9;t=43200');
  });

  test("over the limit: a 429 rate-limited problem with Retry-After; the tenant's keys share the window", async () => {
    expect((await call(gw, "acme-key-0002")).status).toBe(200);
    expect((await call(gw, "acme-key-0001")).status).toBe(200);
    const before = up.received.length;
    const res = await call(gw, "acme-key-0002");
    expect(res.status).toBe(429);
    expect(res.headers.get("content-type")).toBe("application/problem+json");
    const body = (await res.json()) as { type: string; status: number };
    expect(body).toMatchObject({ type: "urn:gatehouse:problem:rate-limited", status: 429 });
    const retry = Number(res.headers.get("retry-after"));
    expect(retry).toBeGreaterThan(0);
    expect(res.headers.get("ratelimit")).toStartWith('"burst";r=0;');
    expect(up.received.length).toBe(before);

    // Another tenant is not affected by acme's burst.
    expect((await call(gw, "globex-key-0001")).status).toBe(200);

    // Retry-After is never early: waiting exactly that long is enough.
    clock.advance(retry * 1000);
    expect((await call(gw, "acme-key-0001")).status).toBe(200);
  });

  test("a route's cost counts against limits and the quota; the quota resets at midnight", async () => {
    // acme has used 4 units today; two cost-3 reports bring it to the quota of 10.
    for (let i = 0; i < 2; i++) {
      clock.advance(60_000);
      expect((await call(gw, "acme-key-0001", "/v1/reports", { method: "POST", body: "{}" })).status).toBe(
        200,
      );
    }
    clock.advance(60_000);
    const res = await call(gw, "acme-key-0001", "/v1/reports", { method: "POST", body: "{}" });
    expect(res.status).toBe(429);
    expect(((await res.json()) as { type: string }).type).toBe("urn:gatehouse:problem:quota-exhausted");
    const midnight = Date.parse("2026-03-11T00:00:00Z");
    expect(Number(res.headers.get("retry-after"))).toBe(Math.ceil((midnight - clock.now()) / 1000));
    clock.set(midnight);
    expect((await call(gw, "acme-key-0001", "/v1/reports", { method: "POST", body: "{}" })).status).toBe(200);
  });

  test("a request costing more than a limit allows is refused without a Retry-After", async () => {
    const res = await call(gw, "globex-key-0001", "/v1/exports", { method: "POST", body: "{}" });
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBeNull();
    expect(((await res.json()) as { detail: string }).detail).toContain("can never be admitted");
  });
});

describe("concurrency caps", () => {
  test("a tenant's second in-flight request is refused at once; other tenants are not starved", async () => {
    const gw = startTestGateway(config(up.url), { clock: new ManualClock() });
    const { promise: arrived, resolve } = Promise.withResolvers<void>();
    const { promise: release, resolve: letGo } = Promise.withResolvers<void>();
    up.on("/v1/hold", async () => {
      resolve();
      await release;
      return new Response("held");
    });
    try {
      const held = call(gw, "acme-key-0001", "/v1/hold");
      await arrived;
      const second = await call(gw, "acme-key-0002");
      expect(second.status).toBe(429);
      expect(((await second.json()) as { type: string }).type).toBe(
        "urn:gatehouse:problem:concurrency-limited",
      );
      expect((await call(gw, "globex-key-0001")).status).toBe(200);
      letGo();
      expect((await held).status).toBe(200);
      // The slot is free again once the response has finished.
      expect((await call(gw, "acme-key-0002")).status).toBe(200);
    } finally {
      letGo();
      await gw.close();
    }
  });
});

describe("quotas survive a restart", () => {
  test("counts persist across a stop and start, neither reset nor double-counted", async () => {
    const clock = new ManualClock(Date.parse("2026-03-10T08:00:00Z"));
    const db = join(dir, "quota.db");
    let gw = startTestGateway(config(up.url), { clock, db });
    for (let i = 0; i < 5; i++) {
      clock.advance(5_000);
      expect((await call(gw, "globex-key-0001")).status).toBe(200);
    }
    await gw.close();

    gw = startTestGateway(config(up.url), { clock, db });
    try {
      clock.advance(20_000);
      const res = await call(gw, "globex-key-0001");
      expect(res.status).toBe(200);
      expect(res.headers.get("ratelimit")).toContain('"daily";r=4;');
    } finally {
      await gw.close();
    }
  });
});
