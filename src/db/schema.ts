/**
 * SQLite structure. Migrations in drizzle/ are generated from this file (`npm run gen`) and embedded
 * in the binary; a test fails when they are stale.
 */
import { sql } from "drizzle-orm";
import { index, integer, primaryKey, real, sqliteTable, text } from "drizzle-orm/sqlite-core";

/** Who owns a row: the config file (read-only through the API) or the control API. */
export type Source = "file" | "api";

export const tenants = sqliteTable("tenants", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  plan: text("plan").notNull(),
  /** JSON: Record<string,string> */
  metadata: text("metadata").notNull().default("{}"),
  /** JSON: Record<string,string> upstream overrides */
  upstreams: text("upstreams").notNull().default("{}"),
  /** JSON: the tenant's own limits, rules, quota and concurrency (the plan's come from the config) */
  policies: text("policies").notNull().default("{}"),
  disabled: integer("disabled", { mode: "boolean" }).notNull().default(false),
  source: text("source").$type<Source>().notNull(),
  /** For file-owned rows: where the object is declared, "gateway.yaml:12". */
  sourceRef: text("source_ref"),
  createdAt: integer("created_at").notNull(),
  updatedAt: integer("updated_at").notNull(),
});

export const apiKeys = sqliteTable(
  "api_keys",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id, { onDelete: "cascade" }),
    /** "sha256:<hex>" of the secret; the secret itself is never stored. */
    hash: text("hash").notNull().unique(),
    /** Shown in listings so people can tell keys apart: the generated prefix and the last 4 characters. */
    prefix: text("prefix").notNull().default(""),
    last4: text("last4").notNull().default(""),
    /** After a rotation: the previous secret's hash, accepted until graceUntil. */
    previousHash: text("previous_hash").unique(),
    graceUntil: integer("grace_until"),
    /** JSON: CompiledLimit declarations added for this key */
    limits: text("limits").notNull().default("[]"),
    disabled: integer("disabled", { mode: "boolean" }).notNull().default(false),
    expiresAt: integer("expires_at"),
    lastUsedAt: integer("last_used_at"),
    source: text("source").$type<Source>().notNull(),
    sourceRef: text("source_ref"),
    createdAt: integer("created_at").notNull(),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [index("api_keys_tenant").on(t.tenantId)],
);

/** Quota counters, written as absolute values so a restart neither resets nor double-counts. */
export const quotaUsage = sqliteTable(
  "quota_usage",
  {
    scope: text("scope").notNull(),
    periodStart: integer("period_start").notNull(),
    used: integer("used").notNull(),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [primaryKey({ columns: [t.scope, t.periodStart] })],
);

/** One row per request, refused ones included. */
export const usage = sqliteTable(
  "usage",
  {
    id: integer("id").primaryKey({ autoIncrement: false }),
    ts: integer("ts").notNull(),
    requestId: text("request_id").notNull(),
    tenantId: text("tenant_id"),
    keyId: text("key_id"),
    route: text("route"),
    method: text("method").notNull(),
    path: text("path").notNull(),
    status: integer("status").notNull(),
    outcome: text("outcome").notNull(),
    cost: integer("cost").notNull(),
    bytesIn: integer("bytes_in").notNull(),
    bytesOut: integer("bytes_out").notNull(),
    latencyMs: real("latency_ms").notNull(),
    upstreamMs: real("upstream_ms"),
  },
  (t) => [index("usage_tenant_ts").on(t.tenantId, t.ts), index("usage_ts").on(t.ts)],
);

/** Append-only record of every change made through the control API or a config sync. */
export const auditLog = sqliteTable("audit_log", {
  id: integer("id").primaryKey({ autoIncrement: true }),
  ts: integer("ts").notNull(),
  actor: text("actor").notNull(),
  action: text("action").notNull(),
  objectType: text("object_type").notNull(),
  objectId: text("object_id").notNull(),
  /** JSON, secrets masked */
  before: text("before"),
  after: text("after"),
});

/** Small key/value facts about this database, e.g. the hash of the last synced config. */
export const meta = sqliteTable("meta", {
  key: text("key").primaryKey(),
  value: text("value").notNull(),
  updatedAt: integer("updated_at").notNull().default(sql`(unixepoch() * 1000)`),
});
