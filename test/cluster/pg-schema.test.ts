/**
 * SQLite's schema (src/db/schema.ts) is the source of truth for what a node stores; PostgreSQL's
 * (src/cluster/postgres/schema.ts) holds the same shared tables column for column, so rows move
 * between the two as they are. These fail when one changes without the other.
 */
import { expect, test } from "bun:test";
import { cpSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { is } from "drizzle-orm";
import { PgTable, getTableConfig as pgConfig } from "drizzle-orm/pg-core";
import { SQLiteTable, getTableConfig as sqliteConfig } from "drizzle-orm/sqlite-core";
import * as pgSchema from "../../src/cluster/postgres/schema.ts";
import * as sqliteSchema from "../../src/db/schema.ts";

const root = join(import.meta.dir, "../..");

/** Only in SQLite: each node's own. */
// Browser sign-in links and sessions stay on the node that made them (README, Cluster mode).
const NODE_LOCAL_TABLES = ["meta", "portal_links", "quota_usage", "ui_sessions"];
const NODE_LOCAL_COLUMNS: Record<string, string[]> = { api_keys: ["last_used_at"] };
/** Only in PostgreSQL: what the cluster needs to follow and ship (see the schema's header). */
const CLUSTER_TABLES = ["cluster_nodes", "cluster_state", "tombstones"];
const CLUSTER_COLUMNS: Record<string, string[]> = {
  tenants: ["version"],
  api_keys: ["version"],
  credentials: ["version"],
  audit_log: ["node"],
  usage: ["node", "local_id"],
  usage_rollup: ["node"],
};

/** SQLite column type → the PostgreSQL types that hold the same values. */
const SAME_VALUES: Record<string, string[]> = {
  SQLiteText: ["PgText"],
  SQLiteInteger: ["PgBigInt53", "PgInteger", "PgBigSerial53"],
  SQLiteBoolean: ["PgBoolean"],
  SQLiteReal: ["PgDoublePrecision"],
  SQLiteBlobBuffer: ["PgCustomColumn"],
};

function tables<T>(schema: Record<string, unknown>, isTable: (v: unknown) => v is T) {
  return Object.entries(schema).filter((e): e is [string, T] => isTable(e[1]));
}

test("every shared table has the same columns in both databases, by name, property, type and nullability", () => {
  const sqlite = new Map(
    tables(sqliteSchema, (v): v is SQLiteTable => is(v, SQLiteTable)).map(([prop, t]) => {
      const c = sqliteConfig(t);
      return [c.name, { prop, table: t, columns: c.columns }] as const;
    }),
  );
  const pg = new Map(
    tables(pgSchema, (v): v is PgTable => is(v, PgTable)).map(([prop, t]) => {
      const c = pgConfig(t);
      return [c.name, { prop, table: t, columns: c.columns }] as const;
    }),
  );
  expect([...sqlite.keys()].filter((n) => !pg.has(n)).sort()).toEqual(NODE_LOCAL_TABLES);
  expect([...pg.keys()].filter((n) => !sqlite.has(n)).sort()).toEqual(CLUSTER_TABLES);

  for (const [name, s] of sqlite) {
    const p = pg.get(name);
    if (!p) continue;
    expect(`${name}: ${p.prop}`).toBe(`${name}: ${s.prop}`);
    const describe = (cols: { name: string }[], skip: string[] = []) =>
      cols
        .filter((c) => !skip.includes(c.name))
        .map((c) => c.name)
        .sort();
    expect(describe(p.columns, CLUSTER_COLUMNS[name])).toEqual(describe(s.columns, NODE_LOCAL_COLUMNS[name]));
    for (const sc of s.columns) {
      const pc = p.columns.find((c) => c.name === sc.name);
      if (!pc) continue;
      const where = `${name}.${sc.name}`;
      // The same JavaScript property, so a row read from one is written to the other as it is.
      const sProp = Object.entries(s.table).find(([, v]) => v === sc)?.[0];
      const pProp = Object.entries(p.table).find(([, v]) => v === pc)?.[0];
      expect(`${where} ${pProp}`).toBe(`${where} ${sProp}`);
      expect(`${where} ${pc.notNull ? "not null" : "null"}`).toBe(
        `${where} ${sc.notNull ? "not null" : "null"}`,
      );
      expect(`${where} ${SAME_VALUES[sc.columnType]?.includes(pc.columnType)}`).toBe(`${where} true`);
    }
  }
});

test("drizzle-pg/ covers src/cluster/postgres/schema.ts", () => {
  const out = mkdtempSync(join(tmpdir(), "gatehouse-pg-migrations-"));
  try {
    cpSync(join(root, "drizzle-pg"), out, { recursive: true });
    const before = readdirSync(out).sort();
    const r = Bun.spawnSync(
      [
        join(root, "node_modules/.bin/drizzle-kit"),
        "generate",
        "--dialect",
        "postgresql",
        "--schema",
        "src/cluster/postgres/schema.ts",
        "--out",
        out,
      ],
      { cwd: root, env: { ...process.env, NO_COLOR: "1" } },
    );
    expect(r.exitCode).toBe(0);
    expect(readdirSync(out).sort()).toEqual(before);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
