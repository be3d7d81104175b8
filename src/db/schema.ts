/**
 * SQLite structure. Migrations in drizzle/ are generated from this file (`npm run gen`) and embedded
 * in the binary; a test fails when they are stale.
 */
import { sql } from "drizzle-orm";
import { blob, index, integer, primaryKey, real, sqliteTable, text } from "drizzle-orm/sqlite-core";

/** Who owns a row: the config file (read-only through the API) or the control API. */
export type Source = "file" | "api";

/**
 * A random incarnation id, set when a tenant or key row is inserted and never changed (syncs update
 * rows in place). Limit and quota counters are keyed by it, not by the id, so a tenant or key created
 * again under a deleted one's id starts with clean counters.
 */
export function newUid(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(8))).toString("hex");
}

export const tenants = sqliteTable("tenants", {
  id: text("id").primaryKey(),
  uid: text("uid").notNull().$defaultFn(newUid),
  name: text("name").notNull(),
  plan: text("plan").notNull(),
  /** JSON: Record<string,string> */
  metadata: text("metadata").notNull().default("{}"),
  /** JSON: string[], other names a token may give the tenant by */
  externalIds: text("external_ids").notNull().default("[]"),
  /** JSON: Record<string,string> upstream overrides */
  upstreams: text("upstreams").notNull().default("{}"),
  /** JSON: Record<string,string> upstream name → the vault credential this tenant's requests carry there */
  credentials: text("credentials").notNull().default("{}"),
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
    uid: text("uid").notNull().$defaultFn(newUid),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id, { onDelete: "cascade" }),
    /** A short human label shown in listings, or null. */
    name: text("name"),
    /** JSON: Record<string,string> */
    metadata: text("metadata").notNull().default("{}"),
    /** "sha256:<hex>" of the secret; the secret itself is never stored. */
    hash: text("hash").notNull().unique(),
    /** Shown in listings so people can tell keys apart: the generated prefix and the last 4 characters. */
    prefix: text("prefix").notNull().default(""),
    last4: text("last4").notNull().default(""),
    /** After a rotation: the previous secret's hash, accepted until graceUntil. */
    previousHash: text("previous_hash").unique(),
    graceUntil: integer("grace_until"),
    /** JSON: limit declarations added for this key */
    limits: text("limits").notNull().default("[]"),
    /** JSON: rule declarations added for this key */
    rules: text("rules").notNull().default("[]"),
    /** JSON: a quota declaration for this key, or null */
    quota: text("quota"),
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

/**
 * Quota counters, written as absolute values so a restart neither resets nor double-counts. `scope` is
 * `tenant:<uid>:<origin>:<name>` or `key:<uid>:<origin>:<name>`: whose counter (a tenant's or key's
 * incarnation) and which declaration (plan, tenant or key, and the quota's name).
 */
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

/**
 * One row per request, refused ones included (see src/usage/row.ts for what each column means). `ts`
 * is when the request arrived, so a row lands in the same period as the quota it counted against.
 */
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
    /** Comma-separated codes shadow policies would have refused the request with; null for none. */
    wouldRefuse: text("would_refuse"),
  },
  // One index serves every read, all of them bounded by time: a tenant's rows are found among all
  // tenants' index entries of the range, without reading the table. Rows arrive in time order, so
  // each insert lands at the index's end; the former (tenant_id, ts) index put them in 100 places
  // for 100 tenants, and it and a (ts) index cost the writer thread twice this one.
  (t) => [index("usage_ts_tenant").on(t.ts, t.tenantId)],
);

/** What a usage rollup row is summed over besides time and tenant: nothing, or one column of `usage`. */
export type RollupDim = "all" | "route" | "key" | "status";

/**
 * Totals of `usage` per period (a minute or an hour), tenant and one dimension, maintained in the same
 * transaction that inserts the rows, so usage queries read a few rollup rows instead of every request.
 * Nulls are stored as "" because SQLite treats NULLs in a key as distinct, which would defeat the upsert.
 */
export const usageRollup = sqliteTable(
  "usage_rollup",
  {
    /** Period length in ms: 60000 or 3600000. */
    grain: integer("grain").notNull(),
    dim: text("dim").$type<RollupDim>().notNull(),
    /** Period start, epoch ms, a multiple of grain. */
    start: integer("start").notNull(),
    /** "" for requests refused before a key was recognised; "*" for the sum over all tenants. */
    tenantId: text("tenant_id").notNull(),
    /** The route, key id or status; "" when the dimension is "all" or the value was null. */
    value: text("value").notNull(),
    requests: integer("requests").notNull(),
    errors: integer("errors").notNull(),
    cost: integer("cost").notNull(),
    bytesIn: integer("bytes_in").notNull(),
    bytesOut: integer("bytes_out").notNull(),
    upstreamCount: integer("upstream_count").notNull(),
    upstreamMs: real("upstream_ms").notNull(),
    latencyMin: real("latency_min").notNull(),
    latencyMax: real("latency_max").notNull(),
    /** Sparse log-bucketed latency histogram, see src/usage/histogram.ts. */
    latencyHist: blob("latency_hist", { mode: "buffer" }).notNull(),
  },
  // No index by tenant: it made every upsert ~2.5x slower. A tenant's rollups are found with one
  // primary-key seek per period instead (see src/usage/scan.ts).
  (t) => [primaryKey({ columns: [t.grain, t.dim, t.start, t.tenantId, t.value] })],
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

/**
 * The vault: upstream credentials, write-only through the control API. Only ciphertext is stored
 * (AES-256-GCM under the master key, the name bound as additional data; see src/vault/crypto.ts).
 */
export const credentials = sqliteTable("credentials", {
  name: text("name").primaryKey(),
  description: text("description"),
  /** The ciphertext followed by GCM's tag. */
  ciphertext: blob("ciphertext", { mode: "buffer" }).notNull(),
  iv: blob("iv", { mode: "buffer" }).notNull(),
  /** The id of the master key it is sealed under, so a wrong key fails at start-up, not on use. */
  keyId: text("key_id").notNull(),
  createdAt: integer("created_at").notNull(),
  updatedAt: integer("updated_at").notNull(),
});

/** Small key/value facts about this database, e.g. the hash of the last synced config. */
export const meta = sqliteTable("meta", {
  key: text("key").primaryKey(),
  value: text("value").notNull(),
  updatedAt: integer("updated_at").notNull().default(sql`(unixepoch() * 1000)`),
});

/**
 * Browser sessions: the operator's dashboard (signed in with the admin token) and tenants' portal
 * (signed in with a one-time link). Only a SHA-256 of the session id is stored; see src/ui/sessions/.
 */
export const uiSessions = sqliteTable(
  "ui_sessions",
  {
    idHash: text("id_hash").primaryKey(),
    kind: text("kind").$type<"operator" | "portal">().notNull(),
    /** The portal session's tenant; null for operator sessions. */
    tenantId: text("tenant_id").references(() => tenants.id, { onDelete: "cascade" }),
    /** Operator sessions: a digest of the admin token they were opened with, so a new token ends them. */
    tokenTag: text("token_tag"),
    createdAt: integer("created_at").notNull(),
    /** Written at most once a minute; the idle timeout counts from it. */
    lastSeenAt: integer("last_seen_at").notNull(),
    /** The absolute end, whatever the activity. */
    expiresAt: integer("expires_at").notNull(),
  },
  (t) => [index("ui_sessions_tenant").on(t.tenantId)],
);

/** One-time sign-in links to the tenant portal, minted by the control API; only a hash is stored. */
export const portalLinks = sqliteTable(
  "portal_links",
  {
    tokenHash: text("token_hash").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id, { onDelete: "cascade" }),
    createdAt: integer("created_at").notNull(),
    expiresAt: integer("expires_at").notNull(),
  },
  (t) => [index("portal_links_tenant").on(t.tenantId)],
);
