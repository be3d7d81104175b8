import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { desc, eq } from "drizzle-orm";
import { parseConfig } from "../../src/config/load.ts";
import { type OpenDb, openDb } from "../../src/db/open.ts";
import { apiKeys, auditLog, tenants } from "../../src/db/schema.ts";
import { syncConfig } from "../../src/db/sync.ts";
import { GatewayState } from "../../src/gateway/state.ts";
import { ManualClock } from "../../src/lib/clock.ts";
import { hashKey } from "../../src/lib/key-hash.ts";

const clock = new ManualClock();
const yaml = (tenantsYaml: string, plans = "  free: {}\n  pro: {}\n") =>
  `version: 1\nupstreams: { e: { mock: echo } }\nplans:\n${plans}routes: [{ match: "* /**", upstream: e }]\ntenants:\n${tenantsYaml}`;

const twoTenants = yaml(`  acme:
    plan: pro
    keys: [{ id: acme-1, secret: acme-secret-one }]
  globex:
    plan: free
    keys: [{ id: globex-1, secret: globex-secret-one }, { id: globex-2, secret: globex-secret-two }]
`);

let dirs: string[] = [];
let dbs: OpenDb[] = [];
afterEach(() => {
  for (const d of dbs) d.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
  dbs = [];
});
const open = (path = ":memory:") => {
  const d = openDb(path);
  dbs.push(d);
  return d;
};
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), "gatehouse-sync-"));
  dirs.push(d);
  return d;
};
const insertApiTenant = (d: OpenDb, id: string, plan = "free") => {
  d.db.insert(tenants).values({ id, name: id, plan, source: "api", createdAt: 1, updatedAt: 1 }).run();
  d.db
    .insert(apiKeys)
    .values({
      id: `${id}-k`,
      tenantId: id,
      hash: hashKey(`${id}-api-secret`),
      source: "api",
      createdAt: 1,
      updatedAt: 1,
    })
    .run();
};

describe("declarative sync", () => {
  test("writes declared tenants and keys as file-owned, with where they are declared", () => {
    const d = open();
    expect(syncConfig(d, parseConfig(twoTenants, "gateway.yaml", {}), clock)).toEqual({
      changed: true,
      tenants: 2,
      keys: 3,
    });
    const rows = d.db.select().from(tenants).all();
    expect(rows.map((r) => [r.id, r.plan, r.source, r.sourceRef])).toEqual([
      ["acme", "pro", "file", "gateway.yaml:8"],
      ["globex", "free", "file", "gateway.yaml:11"],
    ]);
    const keys = d.db.select().from(apiKeys).all();
    expect(keys.map((k) => k.hash)).toContain(hashKey("globex-secret-two"));
  });

  test("the same config twice is a no-op", () => {
    const d = open();
    syncConfig(d, parseConfig(twoTenants, "gateway.yaml", {}), clock);
    expect(syncConfig(d, parseConfig(twoTenants, "gateway.yaml", {}), clock).changed).toBe(false);
  });

  test("removes what the file no longer declares and keeps what the API created", () => {
    const d = open();
    syncConfig(d, parseConfig(twoTenants, "gateway.yaml", {}), clock);
    insertApiTenant(d, "initech");
    const fewer = yaml("  acme:\n    plan: free\n    keys: [{ id: acme-1, secret: acme-secret-one }]\n");
    syncConfig(d, parseConfig(fewer, "gateway.yaml", {}), clock);
    expect(
      d.db.select({ id: tenants.id, plan: tenants.plan, source: tenants.source }).from(tenants).all(),
    ).toEqual([
      { id: "acme", plan: "free", source: "file" },
      { id: "initech", plan: "free", source: "api" },
    ]);
    expect(
      d.db
        .select({ id: apiKeys.id })
        .from(apiKeys)
        .all()
        .map((k) => k.id)
        .sort(),
    ).toEqual(["acme-1", "initech-k"]);
  });

  test("a key moved to a new id keeps working (no collision with its old row)", () => {
    const d = open();
    syncConfig(d, parseConfig(twoTenants, "gateway.yaml", {}), clock);
    const renamed = twoTenants.replace("id: acme-1", "id: acme-renamed");
    syncConfig(d, parseConfig(renamed, "gateway.yaml", {}), clock);
    const row = d.db
      .select()
      .from(apiKeys)
      .all()
      .find((k) => k.hash === hashKey("acme-secret-one"));
    expect(row?.id).toBe("acme-renamed");
  });

  test("a key moved out of a tenant the same edit removes is updated in place: same row, same counters", () => {
    const d = open();
    syncConfig(d, parseConfig(twoTenants, "gateway.yaml", {}), clock);
    const uid = d.db.select().from(apiKeys).where(eq(apiKeys.id, "globex-1")).get()!.uid;
    const moved = yaml(`  acme:
    plan: pro
    keys: [{ id: acme-1, secret: acme-secret-one }, { id: globex-1, secret: globex-secret-one }]
`);
    syncConfig(d, parseConfig(moved, "gateway.yaml", {}), clock);
    const row = d.db.select().from(apiKeys).where(eq(apiKeys.id, "globex-1")).get();
    expect(row).toMatchObject({ tenantId: "acme", uid });
    expect(d.db.select({ id: tenants.id }).from(tenants).all()).toEqual([{ id: "acme" }]);
  });

  test("secrets never reach the database file", () => {
    const dir = tempDir();
    const path = join(dir, "g.db");
    const d = open(path);
    syncConfig(d, parseConfig(twoTenants, "gateway.yaml", {}), clock);
    d.sqlite.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    const bytes = readFileSync(path).toString("latin1");
    expect(bytes).toContain(hashKey("acme-secret-one").slice(7));
    expect(bytes).not.toContain("acme-secret-one");
    expect(d.sqlite.query("PRAGMA journal_mode").get()).toEqual({ journal_mode: "wal" });
  });
});

describe("reload", () => {
  test("a config that cannot serve an API tenant is refused, writes nothing, and the old snapshot keeps serving", () => {
    const dir = tempDir();
    const file = join(dir, "gateway.yaml");
    writeFileSync(file, twoTenants);
    const d = open();
    const state = new GatewayState(file, d, clock, {}, parseConfig(twoTenants, file, {}));
    insertApiTenant(d, "initech", "pro");
    state.rebuild();
    const before = state.snapshot;

    // Drops plan "pro", which the API tenant initech still uses; also drops globex.
    writeFileSync(file, yaml("  acme:\n    plan: free\n", "  free: {}\n"));
    const result = state.reload();
    expect(result).toEqual({
      ok: false,
      errors: [
        `${file}:3:1 plans: tenant "initech", created through the control API, uses plan "pro", which ` +
          "this file no longer declares; keep the plan, or move the tenant to another plan first (PATCH /tenants/initech)",
      ],
    });
    expect(state.snapshot).toBe(before);
    expect(state.lastReloadError?.errors).toEqual(!result.ok ? result.errors : []);
    expect(
      d.db
        .select({ id: tenants.id })
        .from(tenants)
        .all()
        .map((t) => t.id)
        .sort(),
    ).toEqual(["acme", "globex", "initech"]);
  });

  test("a bad file is refused with located errors", () => {
    const dir = tempDir();
    const file = join(dir, "gateway.yaml");
    writeFileSync(file, twoTenants);
    const state = new GatewayState(file, open(), clock, {}, parseConfig(twoTenants, file, {}));
    writeFileSync(file, twoTenants.replace("plan: free", "plan: nope"));
    const result = state.reload();
    expect(result).toEqual({
      ok: false,
      errors: [`${file}:12:11 tenants.globex.plan: no plan named "nope"`],
    });
    expect(state.snapshot.version).toBe(1);
  });

  test("a good reload swaps the snapshot whole", () => {
    const dir = tempDir();
    const file = join(dir, "gateway.yaml");
    writeFileSync(file, twoTenants);
    const state = new GatewayState(file, open(), clock, {}, parseConfig(twoTenants, file, {}));
    const seen: number[] = [];
    state.onSwap((s) => seen.push(s.version));
    writeFileSync(file, twoTenants.replace("plan: free", "plan: pro"));
    expect(state.reload()).toEqual({ ok: true, version: 2, changed: true });
    expect(state.snapshot.tenants.get("globex")?.plan).toBe("pro");
    expect(seen).toEqual([2]);
  });
});

describe("the audit entry of a sync", () => {
  const before = `version: 1
upstreams: { e: { mock: echo }, gone: { mock: echo }, same: { mock: echo } }
plans: { free: {}, pro: {}, old: {} }
routes: [{ match: "* /**", upstream: e }, { match: "GET /old/**", upstream: gone }]
tenants:
  acme:
    plan: pro
    keys: [{ id: acme-1, secret: acme-secret-one }, { id: acme-2, secret: acme-secret-two }]
  globex: { plan: free, keys: [{ id: globex-1, secret: globex-secret-one }] }
  initech: { plan: free }
`;
  const after = `version: 1
upstreams: { e: { mock: echo }, fresh: { mock: echo }, same: { url: "http://127.0.0.1:9" } }
plans: { free: { limits: [{ limit: 5, window: 1s }] }, pro: {}, new: {} }
routes: [{ match: "* /**", upstream: e, cost: 2 }, { match: "GET /new/**", upstream: fresh }]
tenants:
  acme:
    plan: free
    keys:
      - { id: acme-1, secret: acme-secret-new }
      - { id: acme-2, secret: acme-secret-two, disabled: true }
      - { id: acme-3, secret: acme-secret-three }
  initech: { plan: free }
  newco: { name: newco, plan: free, keys: [{ id: newco-k, hash: "${hashKey("newco-api-secret")}" }] }
  dave: { plan: pro }
`;
  const lastSync = (d: OpenDb) =>
    JSON.parse(d.db.select().from(auditLog).orderBy(desc(auditLog.id)).limit(1).get()!.after!);

  test("lists every tenant and key added, changed (which fields), removed and adopted, and every plan, route and upstream", () => {
    const d = open();
    syncConfig(d, parseConfig(before, "gateway.yaml", {}), clock);
    expect(lastSync(d)).toEqual({
      tenants: { added: ["acme", "globex", "initech"], changed: {}, removed: [], adopted: [] },
      keys: { added: ["acme-1", "acme-2", "globex-1"], changed: {}, removed: [], adopted: [] },
      plans: { added: ["free", "pro", "old"], changed: [], removed: [] },
      routes: { added: ["* /**", "GET /old/**"], changed: [], removed: [] },
      upstreams: { added: ["e", "gone", "same"], changed: [], removed: [] },
    });
    insertApiTenant(d, "newco");

    syncConfig(d, parseConfig(after, "gateway.yaml", {}), clock);
    expect(lastSync(d)).toEqual({
      tenants: { added: ["dave"], changed: { acme: ["plan"] }, removed: ["globex"], adopted: ["newco"] },
      keys: {
        added: ["acme-3"],
        changed: { "acme-1": ["secret"], "acme-2": ["disabled"] },
        removed: ["globex-1"],
        adopted: ["newco-k"],
      },
      plans: { added: ["new"], changed: ["free"], removed: ["old"] },
      routes: { added: ["GET /new/**"], changed: ["* /**"], removed: ["GET /old/**"] },
      upstreams: { added: ["fresh"], changed: ["same"], removed: ["gone"] },
    });
  });

  test("reordering keys in the file changes nothing it lists", () => {
    const d = open();
    syncConfig(d, parseConfig(after, "gateway.yaml", {}), clock);
    const reordered = after
      .replace("{ limit: 5, window: 1s }", "{ window: 1s, limit: 5 }")
      .replace('{ match: "* /**", upstream: e, cost: 2 }', '{ cost: 2, upstream: e, match: "* /**" }')
      .replace(
        "{ id: acme-2, secret: acme-secret-two, disabled: true }",
        "{ disabled: true, id: acme-2, secret: acme-secret-two }",
      );
    expect(syncConfig(d, parseConfig(reordered, "gateway.yaml", {}), clock).changed).toBe(true);
    expect(lastSync(d)).toEqual({
      tenants: { added: [], changed: {}, removed: [], adopted: [] },
      keys: { added: [], changed: {}, removed: [], adopted: [] },
      plans: { added: [], changed: [], removed: [] },
      routes: { added: [], changed: [], removed: [] },
      upstreams: { added: [], changed: [], removed: [] },
    });
  });
});
