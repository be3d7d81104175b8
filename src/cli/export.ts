/**
 * `gatehouse export`: the tenants and keys created through the control API, written as gateway.yaml
 * so they can move into the file. Keys appear as `hash:`, never as secrets (we do not have them).
 * API keys of tenants declared in the file are listed under that tenant with only `keys:`, to be
 * appended to its declaration. Every `${` in a value is written `$${`, so the file reads it literally.
 */
import { existsSync } from "node:fs";
import { and, asc, eq, inArray } from "drizzle-orm";
import { Document, isMap, isScalar } from "yaml";
import { escapeInterpolation } from "../config/interpolate.ts";
import { loadConfigFile } from "../config/load.ts";
import type { KeyDecl, TenantDecl } from "../config/schema.ts";
import { keyDecl, tenantDecl } from "../db/declarations.ts";
import { type Db, openDb } from "../db/open.ts";
import { DatabaseOpenError } from "../db/open-error.ts";
import { apiKeys, tenants } from "../db/schema.ts";
import type { Args, CommandSpec } from "./args.ts";
import { configArg, configFile, configFlag } from "./command.ts";
import { ExitCode } from "./errors.ts";
import { resolveOverrides } from "./overrides.ts";

type KeyRow = typeof apiKeys.$inferSelect;

export function exportApiObjects(db: Pick<Db, "select">, generatedAt = new Date()): string {
  const apiTenants = db
    .select()
    .from(tenants)
    .where(eq(tenants.source, "api"))
    .orderBy(asc(tenants.id))
    .all();
  const keys = db.select().from(apiKeys).where(eq(apiKeys.source, "api")).orderBy(asc(apiKeys.id)).all();
  const keysOf = new Map<string, KeyRow[]>();
  for (const k of keys) keysOf.set(k.tenantId, [...(keysOf.get(k.tenantId) ?? []), k]);

  const out: Record<string, TenantDecl | { keys: KeyDecl[] }> = {};
  for (const t of apiTenants) {
    const own = keysOf.get(t.id);
    out[t.id] = { ...tenantDecl(t), ...(own ? { keys: own.map(keyDecl) } : {}) };
    keysOf.delete(t.id);
  }
  const fileTenantIds = [...keysOf.keys()].sort();
  const fileTenants = fileTenantIds.length
    ? db
        .select({ id: tenants.id, sourceRef: tenants.sourceRef })
        .from(tenants)
        .where(and(eq(tenants.source, "file"), inArray(tenants.id, fileTenantIds)))
        .all()
    : [];
  const refs = new Map(fileTenants.map((t) => [t.id, t.sourceRef]));
  for (const id of fileTenantIds) out[id] = { keys: keysOf.get(id)!.map(keyDecl) };

  const doc = new Document({ tenants: escapeStrings(out) });
  doc.commentBefore =
    ` Tenants and keys created through the gatehouse control API (exported ${generatedAt.toISOString()}).\n` +
    " Move them under tenants: in gateway.yaml; keys carry hashes only.";
  const map = doc.get("tenants", true);
  if (isMap(map)) {
    for (const pair of map.items) {
      if (!isScalar(pair.key) || !refs.has(String(pair.key.value))) continue;
      pair.key.commentBefore = ` declared in ${refs.get(String(pair.key.value))}: append these keys to its keys:`;
    }
  }
  return doc.toString({ lineWidth: 0 });
}

/**
 * API-supplied text may contain `${`. Written as is, it would read the gateway's environment (admin
 * token, upstream credentials) once pasted into gateway.yaml; escaped, it loads back as written.
 * Keys are never interpolated, so only values are escaped.
 */
function escapeStrings<T>(value: T): T {
  if (typeof value === "string") return escapeInterpolation(value) as T;
  if (Array.isArray(value)) return value.map(escapeStrings) as T;
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, escapeStrings(v)])) as T;
  }
  return value;
}

/** The CLI: reads the database the config names (or --db) without syncing or changing anything. */
export function runExport(configPath: string, dbPath?: string): string {
  const path = dbPath ?? loadConfigFile(configPath).config.database ?? "./gatehouse.db";
  if (path === ":memory:") {
    throw new DatabaseOpenError(path, "an in-memory database has nothing to export; pass --db PATH");
  }
  if (!existsSync(path)) throw new DatabaseOpenError(path, "no database there; pass --db PATH");
  const database = openDb(path);
  try {
    return exportApiObjects(database.db);
  } finally {
    database.close();
  }
}

const flags = {
  config: configFlag,
  db: {
    type: "string",
    value: "PATH",
    help: "the database to read (default: GATEHOUSE_DB, else database: in the config)",
  },
} as const;

export const spec: CommandSpec<typeof flags> = {
  name: "export",
  usage: "[FILE] [--db PATH]",
  description:
    "Prints the tenants and keys created through the control API as gateway.yaml, to move them into\n" +
    "the file. Keys appear as hash:, never as secrets. Reads the database the config names.",
  args: configArg,
  flags,
  notes: ["exit codes: 0 printed, 2 usage error, 3 config invalid, 4 database missing or unopenable"],
};

export async function run(args: Args<typeof flags>): Promise<number> {
  const file = configFile("export", args.flags.config, args.positionals);
  const { db } = resolveOverrides("export", { db: args.flags.db }, process.env, ["db"]);
  process.stdout.write(runExport(file, db?.value));
  return ExitCode.ok;
}
