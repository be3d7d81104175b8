/**
 * Quota state, reset and credit on a real gateway: the counts are the data plane's own, a change
 * takes effect on the next request, is audited, is written like any count (so no flush, earlier or
 * later, brings the old count back) and survives a restart.
 */
import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startTestGateway, type TestGateway } from "../support/gateway.ts";

const YAML = `version: 1
upstreams:
  echo: { mock: echo }
plans:
  metered:
    quota: { limit: 5, period: day, name: daily }
    rules: [{ allow: "* /v1/**" }]
  unmetered:
    rules: [{ allow: "* /v1/**" }]
routes:
  - { match: "* /v1/**", upstream: echo }
tenants:
  acme:
    plan: metered
    keys:
      - { id: acme-a, secret: acme-secret-000a, quota: { limit: 3, period: hour, name: hourly } }
      - { id: acme-b, secret: acme-secret-000b }
  globex:
    plan: unmetered
    keys: [{ id: globex-a, secret: globex-secret-00a }]
`;

const START = Date.parse("2026-03-10T10:30:00Z");
let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

function start(opts: { db?: string; testClockStart?: number | null } = {}) {
  const { testClockStart = START, ...rest } = opts;
  gw = startTestGateway(YAML, { ...rest, ...(testClockStart === null ? {} : { testClockStart }) });
  return gw;
}

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON answers
async function admin(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${gw!.adminUrl}${path}`, {
    method,
    ...(body === undefined
      ? {}
      : { body: JSON.stringify(body), headers: { "content-type": "application/json" } }),
  });
  return { status: res.status, json: await res.json() };
}

async function send(secret: string, n = 1): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${gw!.dataUrl}/v1/items`, { headers: { authorization: `Bearer ${secret}` } });
    await res.arrayBuffer();
    statuses.push(res.status);
  }
  return statuses;
}

const used = (state: { quotas: { name: string; used: number }[] }) =>
  Object.fromEntries(state.quotas.map((q) => [q.name, q.used]));

describe("quota state", () => {
  test("a tenant's shared quotas and a key's every quota: used, remaining, period and reset time", async () => {
    start();
    await send("acme-secret-000a", 2);
    await send("acme-secret-000b");
    const tenant = await admin("GET", "/tenants/acme/quota");
    expect(tenant.status).toBe(200);
    expect(tenant.json).toEqual({
      tenant: "acme",
      key: null,
      quotas: [
        {
          name: "daily",
          limit: 5,
          period: "day",
          anchor: 1,
          timezone: "UTC",
          by: "tenant",
          origin: "plan",
          declaredAt: "plans.metered.quota",
          source: "gateway.yaml:6",
          used: 3,
          remaining: 2,
          periodStart: "2026-03-10T00:00:00.000Z",
          resetsAt: "2026-03-11T00:00:00.000Z",
        },
      ],
    });
    const key = (await admin("GET", "/keys/acme-a/quota")).json;
    expect(key.key).toBe("acme-a");
    expect(
      key.quotas.map((q: Record<string, unknown>) => [q.name, q.by, q.used, q.remaining, q.resetsAt]),
    ).toEqual([
      ["daily", "tenant", 3, 2, "2026-03-11T00:00:00.000Z"],
      ["hourly", "key", 2, 1, "2026-03-10T11:00:00.000Z"],
    ]);
    expect((await admin("GET", "/tenants/globex/quota")).json.quotas).toEqual([]);
    expect((await admin("GET", "/tenants/nope/quota")).status).toBe(404);
    expect((await admin("GET", "/keys/nope/quota")).status).toBe(404);
  });
});

describe("reset and credit", () => {
  test("a reset lets the next request through, and is audited", async () => {
    start();
    expect(await send("acme-secret-000b", 6)).toEqual([200, 200, 200, 200, 200, 429]);
    const reset = await admin("POST", "/tenants/acme/quota/reset");
    expect(reset.status).toBe(200);
    expect(used(reset.json)).toEqual({ daily: 0 });
    expect(await send("acme-secret-000b")).toEqual([200]);
    const entry = (await admin("GET", "/audit?objectType=tenant&objectId=acme&limit=1")).json.items[0];
    expect(entry).toMatchObject({
      action: "quota.reset",
      before: { quotas: [{ quota: "daily", periodStart: "2026-03-10T00:00:00.000Z", used: 5 }] },
      after: { quotas: [{ quota: "daily", used: 0 }] },
    });
    // Explain reads the same counters.
    const explained = await admin("POST", "/explain", { key: "acme-b", method: "GET", path: "/v1/items" });
    expect(explained.json.limits).toEqual([expect.objectContaining({ name: "daily", used: 1 })]);
  });

  test("a credit gives units back in the current period, never below 0", async () => {
    start();
    await send("acme-secret-000b", 5);
    const credited = await admin("POST", "/tenants/acme/quota/credit", { units: 2 });
    expect(credited.status).toBe(200);
    expect(credited.json.quotas[0]).toMatchObject({ used: 3, remaining: 2 });
    expect(await send("acme-secret-000b", 3)).toEqual([200, 200, 429]);
    const more = await admin("POST", "/tenants/acme/quota/credit", { quota: "daily", units: 100 });
    expect(used(more.json)).toEqual({ daily: 0 });
    const entry = (await admin("GET", "/audit?objectType=tenant&objectId=acme&limit=1")).json.items[0];
    expect(entry).toMatchObject({ action: "quota.credit", after: { units: 100, quotas: [{ used: 0 }] } });
    // A credit does not carry over: the next period starts from 0 with the plain limit.
    await admin("POST", "/clock", { set: "2026-03-11T00:00:00Z" });
    expect(await send("acme-secret-000b", 6)).toEqual([200, 200, 200, 200, 200, 429]);
  });

  test("a key's routes change what the key counts alone; a shared quota is changed through its tenant", async () => {
    start();
    expect(await send("acme-secret-000a", 4)).toEqual([200, 200, 200, 429]);
    const conflict = await admin("POST", "/keys/acme-a/quota/reset", { quota: "daily" });
    expect(conflict.status).toBe(409);
    expect(conflict.json.detail).toContain("POST /tenants/acme/quota/reset");
    const reset = await admin("POST", "/keys/acme-a/quota/reset");
    expect(used(reset.json)).toEqual({ daily: 3, hourly: 0 });
    expect(await send("acme-secret-000a")).toEqual([200]);
    expect(used((await admin("POST", "/keys/acme-a/quota/credit", { units: 1 })).json)).toEqual({
      daily: 4,
      hourly: 0,
    });
    const unknown = await admin("POST", "/keys/acme-a/quota/credit", { quota: "weekly", units: 1 });
    expect(unknown.status).toBe(404);
    expect(unknown.json.detail).toBe('No quota named "weekly" is counted here; key "acme-a" has hourly.');
    // A key that counts nothing alone has nothing to credit.
    expect((await admin("POST", "/keys/acme-b/quota/credit", { units: 1 })).status).toBe(404);
    expect((await admin("POST", "/tenants/globex/quota/reset")).json.quotas).toEqual([]);
  });

  test("bad bodies are refused in words, and change nothing", async () => {
    start();
    await send("acme-secret-000b", 2);
    for (const [body, words] of [
      [{ units: 0 }, "units must be a whole number from 1 to 9007199254740991"],
      [{ units: 1, quota: "Daily!" }, "quota must be 1 to 32 lower-case letters"],
      [{}, "units is required"],
      [{ units: 1, extra: true }, "extra is not allowed here (allowed: quota, units)"],
    ] as const) {
      const r = await admin("POST", "/tenants/acme/quota/credit", body);
      expect(r.status).toBe(400);
      expect(r.json.detail).toContain(words);
    }
    expect(used((await admin("GET", "/tenants/acme/quota")).json)).toEqual({ daily: 2 });
  });
});

describe("persistence", () => {
  /** A database file that outlives one gateway, for a restart. */
  async function withDatabaseFile(run: (db: string) => Promise<void>) {
    const dir = mkdtempSync(join(tmpdir(), "gatehouse-quota-"));
    try {
      await run(join(dir, "gatehouse.db"));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  test("a reset is written like any count: later flushes keep it, and a restart finds it", () =>
    withDatabaseFile(async (db) => {
      start({ db });
      await send("acme-secret-000b", 4);
      // Counted but not yet flushed when the reset comes: the flush must write the reset, not the 4.
      await admin("POST", "/tenants/acme/quota/reset");
      await send("acme-secret-000b");
      // Past several quota flushes.
      await admin("POST", "/clock", { advance: "5s" });
      const sqlite = new Database(db, { readonly: true });
      try {
        expect(sqlite.query("SELECT used FROM quota_usage WHERE scope LIKE '%:plan:daily'").values()).toEqual(
          [[1]],
        );
      } finally {
        sqlite.close();
      }
      await gw!.close();
      start({ db });
      expect(used((await admin("GET", "/tenants/acme/quota")).json)).toEqual({ daily: 1 });
    }));

  // Starting and stopping a writer thread twice can take seconds on a loaded machine: both stops are
  // in the test, under its own time limit, not in afterEach's.
  test(
    "with the writer thread too (no test mode)",
    () =>
      withDatabaseFile(async (db) => {
        start({ db, testClockStart: null });
        await send("acme-secret-000b", 4);
        await admin("POST", "/tenants/acme/quota/credit", { units: 3 });
        await gw!.close();
        start({ db, testClockStart: null });
        expect(used((await admin("GET", "/tenants/acme/quota")).json)).toEqual({ daily: 1 });
        await gw!.close();
        gw = undefined;
      }),
    30_000,
  );
});
