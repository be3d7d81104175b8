/** Migrations that move data: a running deployment keeps what it counted. */

import { Database } from "bun:sqlite";
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { drizzle } from "drizzle-orm/bun-sqlite";
import type { MigrationMeta } from "drizzle-orm/migrator";
import { parseConfig } from "../../src/config/load.ts";
import { migrations } from "../../src/db/migrations.gen.ts";
import { openDb } from "../../src/db/open.ts";
import { buildSnapshot } from "../../src/gateway/build-snapshot.ts";

let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
});

/** Applies the migrations up to (not including) `tag`, as openDb would. */
function migrateUpTo(path: string, tag: string): void {
  const sqlite = new Database(path, { create: true, strict: true });
  const db = drizzle({ client: sqlite });
  const internal = db as unknown as {
    dialect: { migrate(m: MigrationMeta[], session: unknown, config: { migrationsFolder: string }): void };
    session: unknown;
  };
  const upTo = migrations.findIndex((m) => m.tag === tag);
  expect(upTo).toBeGreaterThan(0);
  internal.dialect.migrate(migrations.slice(0, upTo), internal.session, { migrationsFolder: "embedded" });
  sqlite.close();
}

const CONFIG = `version: 1
upstreams: { e: { mock: echo } }
plans:
  metered:
    quota: { limit: 100, period: month, name: monthly }
    limits: [{ limit: 5, window: 1s }]
routes: [{ match: "* /**", upstream: e }]
`;

test("incarnation ids: existing rows get distinct ones, and persisted quota counts move to the new scopes", () => {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-migrate-"));
  dirs.push(dir);
  const path = join(dir, "g.db");
  migrateUpTo(path, "0003_counter_incarnations");

  const old = new Database(path, { strict: true });
  const tenant = old.prepare(
    "INSERT INTO tenants (id, name, plan, policies, source, created_at, updated_at) VALUES (?, ?, 'metered', ?, 'api', 1, 1)",
  );
  tenant.run("acme", "acme", JSON.stringify({ quota: { limit: 50, period: "day", name: "own" } }));
  tenant.run("globex", "globex", JSON.stringify({ quota: { limit: 9, period: "hour", by: "key" } }));
  const key = old.prepare(
    "INSERT INTO api_keys (id, tenant_id, hash, quota, source, created_at, updated_at) VALUES (?, ?, ?, ?, 'api', 1, 1)",
  );
  key.run("acme-k", "acme", `sha256:${"1".repeat(64)}`, JSON.stringify({ limit: 7, period: "day" }));
  key.run("globex-k", "globex", `sha256:${"2".repeat(64)}`, null);
  const usage = old.prepare(
    "INSERT INTO quota_usage (scope, period_start, used, updated_at) VALUES (?, 0, ?, 1)",
  );
  const counts: [string, number][] = [
    ["tenant:acme:monthly", 11], // the plan's
    ["tenant:acme:own", 12], // the tenant's own
    ["key:acme-k:quota-day-by-key", 13], // the key's own
    ["tenant:globex:monthly", 14],
    ["key:globex-k:quota-hour-by-key", 15], // the tenant's own, counted per key
    ["tenant:deleted:monthly", 16], // no such tenant any more
  ];
  for (const [scope, used] of counts) usage.run(scope, used);
  old.close();

  const d = openDb(path);
  try {
    const snapshot = buildSnapshot(parseConfig(CONFIG, "gateway.yaml", {}).config, d.db, 1);
    const acme = snapshot.tenants.get("acme")!;
    const globex = snapshot.tenants.get("globex")!;
    const keys = [...snapshot.keysByHash.values()];
    const acmeKey = keys.find((k) => k.id === "acme-k")!;
    const globexKey = keys.find((k) => k.id === "globex-k")!;
    const uids = [acme.uid, globex.uid, acmeKey.uid, globexKey.uid];
    for (const uid of uids) expect(uid).toMatch(/^[0-9a-f]{16}$/);
    expect(new Set(uids).size).toBe(4);

    // Exactly the scopes the counters of this snapshot read and write.
    const rows = d.sqlite.query("SELECT scope, used FROM quota_usage ORDER BY used").all();
    expect(rows).toEqual([
      { scope: `tenant:${acme.uid}:${acme.quotas[0]!.counter}`, used: 11 },
      { scope: `tenant:${acme.uid}:${acme.quotas[1]!.counter}`, used: 12 },
      { scope: `key:${acmeKey.uid}:${acmeKey.quotas[0]!.counter}`, used: 13 },
      { scope: `tenant:${globex.uid}:${globex.quotas[0]!.counter}`, used: 14 },
      { scope: `key:${globexKey.uid}:${globex.quotas[1]!.counter}`, used: 15 },
    ]);
    expect(rows.map((r) => (r as { scope: string }).scope.split(":")[2])).toEqual([
      "plan",
      "tenant",
      "key",
      "plan",
      "tenant",
    ]);
  } finally {
    d.close();
  }
});
