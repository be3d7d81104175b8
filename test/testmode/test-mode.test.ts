/**
 * `serve --test-mode` through its real listeners: the clock is frozen, /clock moves it, and every
 * timer-driven behaviour happens exactly when the clock passes its boundary.
 */

import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StartupError, startGateway } from "../../src/app.ts";
import { silentLog } from "../../src/lib/log.ts";
import { startTestGateway, type TestGateway } from "../support/gateway.ts";

// A monthly quota anchored on the 15th in New York: the period starting 2027-03-15 begins at local
// midnight, which is 04:00Z because daylight saving time started on 2027-03-14 (it would be 05:00Z
// in winter and 00:00Z in UTC).
const START = Date.parse("2027-03-15T03:50:00Z");

const CONFIG = `version: 1
usage: { retention: 1d }
upstreams:
  echo: { mock: echo }
  dead: { mock: hang, timeout: 5s }
  slow: { mock: { status: 202, body: "late", delay: 2s }, timeout: 10s }
  stalls: { mock: stall, idleTimeout: 3s }
  closes: { mock: close }
plans:
  metered:
    limits: [{ limit: 2, window: 1m, name: burst }]
    quota: { limit: 5, period: month, anchor: 15, timezone: America/New_York, name: monthly }
    rules: [{ allow: "* /v1/**" }]
  unmetered:
    rules: [{ allow: "* /**" }]
routes:
  - { match: "* /v1/**", upstream: echo }
  - { match: "* /dead/**", upstream: dead }
  - { match: "* /slow/**", upstream: slow }
  - { match: "* /stalls/**", upstream: stalls }
  - { match: "* /closes/**", upstream: closes }
tenants:
  acme:
    plan: metered
    keys:
      - { id: acme-key, secret: acme-secret-0001 }
      - { id: acme-expiring, secret: acme-expiring-0001, expires: "2027-03-15T04:00:30Z" }
  tester:
    plan: unmetered
    keys: [{ id: tester-key, secret: tester-secret-0001 }]
`;

let gw: TestGateway;
beforeAll(() => {
  gw = startTestGateway(CONFIG, { testClockStart: START });
});
afterAll(() => gw.close());

const send = (path: string, key: string, init: RequestInit = {}) =>
  fetch(`${gw.dataUrl}${path}`, { ...init, headers: { "x-api-key": key, ...init.headers } });
const admin = (method: string, path: string, body?: unknown) =>
  fetch(`${gw.adminUrl}${path}`, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
const now = async () => ((await (await admin("GET", "/clock")).json()) as { now: string }).now;
const move = async (body: { advance: string } | { set: string }) => {
  const r = await admin("POST", "/clock", body);
  expect(r.status).toBe(200);
  return ((await r.json()) as { now: string }).now;
};
const problemType = async (r: Response) => ((await r.json()) as { type: string }).type;

describe("test mode", () => {
  test("the clock starts frozen where it was told to", async () => {
    expect(await now()).toBe("2027-03-15T03:50:00.000Z");
    await Bun.sleep(5);
    expect(await now()).toBe("2027-03-15T03:50:00.000Z");
  });

  test("window buckets leave exactly when the clock passes Retry-After", async () => {
    expect((await send("/v1/a", "acme-secret-0001")).status).toBe(200);
    expect((await send("/v1/a", "acme-secret-0001")).status).toBe(200);
    const refused = await send("/v1/a", "acme-secret-0001");
    expect(refused.status).toBe(429);
    const retryAfter = Number(refused.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThan(1);
    expect(await problemType(refused)).toBe("urn:gatehouse:problem:rate-limited");
    await move({ advance: `${retryAfter - 1}s` });
    expect((await send("/v1/a", "acme-secret-0001")).status).toBe(429);
    await move({ advance: "1s" });
    expect((await send("/v1/a", "acme-secret-0001")).status).toBe(200);
  });

  test("a monthly quota rolls over at the anchor day's local midnight, after a DST change", async () => {
    // 3 of 5 used; use the rest a window apart.
    await move({ advance: "2m" });
    expect((await send("/v1/a", "acme-secret-0001")).status).toBe(200);
    expect((await send("/v1/a", "acme-secret-0001")).status).toBe(200);
    const exhausted = await send("/v1/a", "acme-secret-0001");
    expect(exhausted.status).toBe(429);
    expect(await problemType(exhausted)).toBe("urn:gatehouse:problem:quota-exhausted");
    await move({ set: "2027-03-15T03:59:59.999Z" });
    expect((await send("/v1/a", "acme-secret-0001")).status).toBe(429);
    await move({ advance: "1ms" });
    const fresh = await send("/v1/a", "acme-secret-0001");
    expect(fresh.status).toBe(200);
    expect(fresh.headers.get("ratelimit")).toContain('"monthly";r=4');
  });

  test("a key expires when the clock reaches its expiry", async () => {
    expect((await send("/v1/a", "acme-expiring-0001")).status).toBe(200);
    await move({ set: "2027-03-15T04:00:29.999Z" });
    await move({ advance: "1ms" });
    expect((await send("/v1/a", "acme-expiring-0001")).status).toBe(401);
  });

  test("a rotated key's old secret works until the grace period ends on the clock", async () => {
    const created = await admin("POST", "/tenants/acme/keys", { id: "acme-api" });
    expect(created.status).toBe(201);
    const first = ((await created.json()) as { secret: string }).secret;
    const rotated = await admin("POST", "/keys/acme-api/rotate", { gracePeriod: "1h" });
    const second = ((await rotated.json()) as { secret: string }).secret;
    await move({ advance: "59m" });
    await move({ advance: "59s" });
    expect((await send("/v1/a", first)).status).toBe(200);
    await move({ advance: "1s" });
    expect((await send("/v1/a", first)).status).toBe(401);
    expect((await send("/v1/a", second)).status).toBe(200);
  });

  test("usage rows carry the virtual time and retention removes them once the clock passes it", async () => {
    const range = "from=2027-03-15T03:00:00Z&to=2027-03-16T00:00:00Z";
    const report = async () =>
      (await (await admin("GET", `/usage?tenant=acme&groupBy=minute&${range}`)).json()) as {
        groups: { group: string; requests: number }[];
        total: { requests: number };
      };
    const before = await report();
    expect(before.groups[0]).toEqual(
      expect.objectContaining({ group: "2027-03-15T03:50:00.000Z", requests: 3 }),
    );
    expect(before.total.requests).toBeGreaterThan(10);
    await move({ advance: "2d" });
    expect((await report()).total.requests).toBe(0);
  });

  test("a report without `to` counts the requests answered at the frozen instant itself", async () => {
    const total = async () =>
      (
        (await (await admin("GET", "/usage?tenant=tester&groupBy=status")).json()) as {
          total: { requests: number };
        }
      ).total.requests;
    const before = await total();
    expect((await send("/v1/now", "tester-secret-0001")).status).toBe(200);
    expect((await send("/v1/now", "tester-secret-0001")).status).toBe(200);
    // The clock has not moved: both rows carry the very millisecond the report is asked at.
    expect(await total()).toBe(before + 2);
  });

  test("the clock never moves backwards", async () => {
    const r = await admin("POST", "/clock", { set: "2027-03-15T00:00:00Z" });
    expect(r.status).toBe(409);
    expect(await problemType(r)).toBe("urn:gatehouse:problem:conflict");
    const bad = await admin("POST", "/clock", { advance: "soon" });
    expect(bad.status).toBe(400);
  });
});

describe("built-in upstreams on the test clock", () => {
  /** Resolves once a request's timer (its upstream deadline or a mock's delay) waits on the test clock. */
  const timerWaiting = async () => {
    for (let i = 0; gw.testClock!.requestTimers === 0; i++) {
      if (i > 2000) throw new Error("no timer was ever scheduled");
      await Bun.sleep(1);
    }
  };
  /** Starts a request and returns once it waits on the test clock. */
  const pending = async (path: string) => {
    let answered = false;
    const response = send(path, "tester-secret-0001").then((r) => {
      answered = true;
      return r;
    });
    await timerWaiting();
    return { response, answered: () => answered };
  };

  test("a hanging upstream is a 504 exactly when the clock passes its timeout", async () => {
    const r = await pending("/dead/x");
    await move({ advance: "4999ms" });
    expect(r.answered()).toBe(false);
    await move({ advance: "1ms" });
    const res = await r.response;
    expect(res.status).toBe(504);
    expect(await problemType(res)).toBe("urn:gatehouse:problem:gateway-timeout");
  });

  test("a delayed answer arrives when the clock passes the delay", async () => {
    const r = await pending("/slow/x");
    await move({ advance: "1999ms" });
    expect(r.answered()).toBe(false);
    await move({ advance: "1ms" });
    const res = await r.response;
    expect(res.status).toBe(202);
    expect(await res.text()).toBe("late");
  });

  test("a body that stalls is cut when the clock passes the idle timeout", async () => {
    const res = await send("/stalls/x", "tester-secret-0001");
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toBe('{"items": [');
    const rest = reader.read().then(
      () => "more",
      () => "cut",
    );
    await timerWaiting();
    await move({ advance: "3s" });
    expect(await rest).toBe("cut");
  });

  test("a closed connection is a 502", async () => {
    const res = await send("/closes/x", "tester-secret-0001");
    expect(res.status).toBe(502);
    expect(await problemType(res)).toBe("urn:gatehouse:problem:bad-gateway");
  });
});

test("test mode refuses to listen beyond loopback", () => {
  for (const [listen, admin] of [
    ["0.0.0.0:0", "127.0.0.1:0"],
    ["127.0.0.1:0", "[::]:0"],
  ]) {
    expect(() =>
      startGateway({
        configPath: gw.configPath,
        db: ":memory:",
        listen,
        admin,
        env: {},
        log: silentLog,
        testMode: { clockStart: START },
      }),
    ).toThrow(StartupError);
  }
});

describe("writes that fall due on the test clock", () => {
  test("quota counters reach the database when the clock passes the flush, last-used times after 5 s", async () => {
    const dir = mkdtempSync(join(tmpdir(), "gatehouse-testmode-db-"));
    const db = join(dir, "gatehouse.db");
    const file = startTestGateway(CONFIG, { testClockStart: START, db });
    try {
      const created = await fetch(`${file.adminUrl}/tenants/acme/keys`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ id: "acme-flush" }),
      });
      const { secret } = (await created.json()) as { secret: string };
      expect((await fetch(`${file.dataUrl}/v1/a`, { headers: { "x-api-key": secret } })).status).toBe(200);
      const reader = new Database(db, { readonly: true });
      const quotaRows = () =>
        (reader.query("select count(*) as n from quota_usage").get() as { n: number }).n;
      const lastUsed = async () =>
        ((await (await fetch(`${file.adminUrl}/keys/acme-flush`)).json()) as { lastUsedAt: string | null })
          .lastUsedAt;
      expect(quotaRows()).toBe(0);
      expect(await lastUsed()).toBeNull();
      const move = (advance: string) =>
        fetch(`${file.adminUrl}/clock`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ advance }),
        });
      await move("999ms");
      expect(quotaRows()).toBe(0);
      await move("1ms");
      expect(quotaRows()).toBe(1);
      expect(await lastUsed()).toBeNull();
      await move("4s");
      expect(await lastUsed()).toBe("2027-03-15T03:50:00.000Z");
      reader.close();
    } finally {
      await file.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
