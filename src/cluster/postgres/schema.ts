/**
 * PostgreSQL structure for cluster mode (`cluster.postgres`). Migrations in drizzle-pg/ are generated
 * from this file (`npm run gen`) and embedded in the binary, as SQLite's are from src/db/schema.ts.
 *
 * The shared tables mirror SQLite's, column for column and with the same JavaScript names, so a row
 * read from one database can be written to the other as it is; test/cluster/pg-schema.test.ts keeps
 * the two in step. What differs, on purpose:
 * - `version` on tenants, api_keys and credentials: the cluster version of the row's last change,
 *   so a node reads only what changed since it last caught up (see follow.ts);
 * - `node` and `local_id` on usage and `node` on usage_rollup: each node ships its own rows and
 *   its own rollups (absolute values), so shipping is idempotent and nodes never contend for a row;
 * - `node` on audit_log: a node does not read its own entries back;
 * - api_keys has no foreign key to tenants (a key may belong to a tenant declared in the nodes'
 *   config files, which PostgreSQL does not hold) and no last_used_at (each node keeps its own);
 * - tables of the cluster's own: cluster_state, tombstones, cluster_nodes.
 */
import {
  bigint,
  bigserial,
  boolean,
  customType,
  doublePrecision,
  index,
  integer,
  pgTable,
  primaryKey,
  text,
  timestamp,
  unique,
} from "drizzle-orm/pg-core";
import type { RollupDim, Source } from "../../db/schema.ts";

/** bytea as a Buffer, as SQLite's blob columns read. */
const bytea = customType<{ data: Buffer; driverData: Buffer }>({ dataType: () => "bytea" });

/** Epoch milliseconds and other integers SQLite stores as 64-bit, read as numbers. */
const int64 = (name: string) => bigint(name, { mode: "number" });

export const tenants = pgTable(
  "tenants",
  {
    id: text("id").primaryKey(),
    uid: text("uid").notNull(),
    name: text("name").notNull(),
    plan: text("plan").notNull(),
    metadata: text("metadata").notNull().default("{}"),
    externalIds: text("external_ids").notNull().default("[]"),
    upstreams: text("upstreams").notNull().default("{}"),
    credentials: text("credentials").notNull().default("{}"),
    policies: text("policies").notNull().default("{}"),
    disabled: boolean("disabled").notNull().default(false),
    source: text("source").$type<Source>().notNull(),
    sourceRef: text("source_ref"),
    createdAt: int64("created_at").notNull(),
    updatedAt: int64("updated_at").notNull(),
    version: int64("version").notNull(),
  },
  (t) => [index("tenants_version").on(t.version)],
);

export const apiKeys = pgTable(
  "api_keys",
  {
    id: text("id").primaryKey(),
    uid: text("uid").notNull(),
    tenantId: text("tenant_id").notNull(),
    name: text("name"),
    metadata: text("metadata").notNull().default("{}"),
    hash: text("hash").notNull().unique(),
    prefix: text("prefix").notNull().default(""),
    last4: text("last4").notNull().default(""),
    previousHash: text("previous_hash").unique(),
    graceUntil: int64("grace_until"),
    limits: text("limits").notNull().default("[]"),
    rules: text("rules").notNull().default("[]"),
    quota: text("quota"),
    disabled: boolean("disabled").notNull().default(false),
    expiresAt: int64("expires_at"),
    source: text("source").$type<Source>().notNull(),
    sourceRef: text("source_ref"),
    createdAt: int64("created_at").notNull(),
    updatedAt: int64("updated_at").notNull(),
    version: int64("version").notNull(),
  },
  (t) => [index("api_keys_tenant").on(t.tenantId), index("api_keys_version").on(t.version)],
);

export const credentials = pgTable(
  "credentials",
  {
    name: text("name").primaryKey(),
    description: text("description"),
    ciphertext: bytea("ciphertext").notNull(),
    iv: bytea("iv").notNull(),
    keyId: text("key_id").notNull(),
    createdAt: int64("created_at").notNull(),
    updatedAt: int64("updated_at").notNull(),
    version: int64("version").notNull(),
  },
  (t) => [index("credentials_version").on(t.version)],
);

export const auditLog = pgTable("audit_log", {
  id: bigserial("id", { mode: "number" }).primaryKey(),
  ts: int64("ts").notNull(),
  actor: text("actor").notNull(),
  action: text("action").notNull(),
  objectType: text("object_type").notNull(),
  objectId: text("object_id").notNull(),
  before: text("before"),
  after: text("after"),
  /** The node whose control API made the change. */
  node: text("node").notNull(),
});

export const usage = pgTable(
  "usage",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    ts: int64("ts").notNull(),
    requestId: text("request_id").notNull(),
    tenantId: text("tenant_id"),
    keyId: text("key_id"),
    route: text("route"),
    method: text("method").notNull(),
    path: text("path").notNull(),
    status: integer("status").notNull(),
    outcome: text("outcome").notNull(),
    cost: int64("cost").notNull(),
    bytesIn: int64("bytes_in").notNull(),
    bytesOut: int64("bytes_out").notNull(),
    latencyMs: doublePrecision("latency_ms").notNull(),
    upstreamMs: doublePrecision("upstream_ms"),
    wouldRefuse: text("would_refuse"),
    /** The node that answered the request, and the row's id in that node's database. */
    node: text("node").notNull(),
    localId: int64("local_id").notNull(),
  },
  (t) => [
    unique("usage_node_row").on(t.node, t.localId),
    index("usage_tenant_ts").on(t.tenantId, t.ts),
    index("usage_ts").on(t.ts),
  ],
);

export const usageRollup = pgTable(
  "usage_rollup",
  {
    grain: int64("grain").notNull(),
    dim: text("dim").$type<RollupDim>().notNull(),
    start: int64("start").notNull(),
    tenantId: text("tenant_id").notNull(),
    value: text("value").notNull(),
    requests: int64("requests").notNull(),
    errors: int64("errors").notNull(),
    cost: int64("cost").notNull(),
    bytesIn: int64("bytes_in").notNull(),
    bytesOut: int64("bytes_out").notNull(),
    upstreamCount: int64("upstream_count").notNull(),
    upstreamMs: doublePrecision("upstream_ms").notNull(),
    latencyMin: doublePrecision("latency_min").notNull(),
    latencyMax: doublePrecision("latency_max").notNull(),
    latencyHist: bytea("latency_hist").notNull(),
    /** Each node's rollups are its own rows: a report adds them up like any other pieces. */
    node: text("node").notNull(),
  },
  // Tenant before period: one tenant's report reads one range of the key. Reports across tenants
  // (per-tenant exports, keys) read the period index.
  (t) => [
    primaryKey({ columns: [t.grain, t.dim, t.tenantId, t.start, t.value, t.node] }),
    index("usage_rollup_period").on(t.grain, t.dim, t.start),
  ],
);

/**
 * One row: the cluster's id (so a node can tell a PostgreSQL it never synced with) and its version,
 * bumped by every change to the shared objects. The row lock the bump takes orders the changes, so
 * versions become visible in the order they were given out.
 */
export const clusterState = pgTable("cluster_state", {
  id: integer("id").primaryKey(),
  clusterId: text("cluster_id").notNull(),
  version: int64("version").notNull(),
});

/** Shared objects deleted, with the version that deleted them, so nodes that copied them drop them too. */
export const tombstones = pgTable(
  "tombstones",
  {
    kind: text("kind").$type<"tenant" | "key" | "credential">().notNull(),
    id: text("id").notNull(),
    version: int64("version").notNull(),
  },
  (t) => [primaryKey({ columns: [t.kind, t.id] }), index("tombstones_version").on(t.version)],
);

/** Heartbeats: which nodes are running, with which config, and how far they have caught up. */
export const clusterNodes = pgTable("cluster_nodes", {
  node: text("node").primaryKey(),
  host: text("host").notNull(),
  pid: integer("pid").notNull(),
  configHash: text("config_hash").notNull(),
  version: int64("version").notNull(),
  startedAt: timestamp("started_at", { withTimezone: true }).notNull().defaultNow(),
  /** PostgreSQL's own clock, so nodes with skewed clocks still agree on who is alive. */
  seenAt: timestamp("seen_at", { withTimezone: true }).notNull().defaultNow(),
});
