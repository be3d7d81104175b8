/**
 * Declarative sync of gateway.yaml into SQLite, in one transaction. Rows the file declares are
 * marked `source = 'file'`; file rows the file no longer declares are removed. Rows created through
 * the control API (`source = 'api'`) are never removed or taken over: a file that would orphan,
 * overwrite or strand one is refused with located errors (see sync-guard.ts), except that the file
 * adopts an API object it declares exactly as `gatehouse export` prints it.
 */
import { and, eq, notInArray } from "drizzle-orm";
import { ConfigError, type ConfigIssue } from "../config/errors.ts";
import type { LoadedConfig } from "../config/load.ts";
import type { KeyDecl, TenantDecl } from "../config/schema.ts";
import type { Clock } from "../lib/clock.ts";
import { hashKey } from "../lib/key-hash.ts";
import type { ReportProgress } from "../lib/progress.ts";
import { keyChanges, tenantChanges } from "./declarations.ts";
import type { Db, OpenDb } from "./open.ts";
import { apiKeys, auditLog, meta, tenants } from "./schema.ts";
import { diffParts, type ObjectChanges, type Parts, partsOf, type SyncChanges } from "./sync-changes.ts";
import {
  type Adoptions,
  type DeclaredKey,
  type DeclaredTenant,
  guardApiObjects,
  type Stored,
  type StoredKey,
  type StoredTenant,
} from "./sync-guard.ts";

export interface SyncReport {
  /** False when the database already held exactly this config. */
  changed: boolean;
  tenants: number;
  keys: number;
}

const CONFIG_HASH = "config_hash";
/** Fingerprints of the last synced plans, routes and upstreams, to list what the next sync changes. */
const CONFIG_PARTS = "config_parts";

/** Reads the synced rows before commit; throwing rolls the whole sync back. */
export type VerifySync = (tx: Pick<Db, "select">) => void;

/** The content hash of the config last synced into this database, if any. */
export function lastSyncedHash({ db }: Pick<OpenDb, "db">): string | undefined {
  return db.select({ value: meta.value }).from(meta).where(eq(meta.key, CONFIG_HASH)).get()?.value;
}

export function syncConfig(
  { db }: OpenDb,
  loaded: LoadedConfig,
  clock: Clock,
  verify?: VerifySync,
  progress?: ReportProgress,
): SyncReport {
  const declared = Object.entries(loaded.config.tenants ?? {});
  const keyCount = declared.reduce((n, [, t]) => n + (t.keys?.length ?? 0), 0);
  if (lastSyncedHash({ db }) === loaded.hash) {
    verify?.(db);
    return { changed: false, tenants: declared.length, keys: keyCount };
  }

  const now = clock.now();
  db.transaction((tx) => {
    const plan = planSync(tx, loaded, now);
    if (plan.issues.length) throw new ConfigError(plan.issues);
    const { tenants: tenantDecls, keys: keyDecls, adopted } = plan;

    const tenantIds = tenantDecls.map((t) => t.id);
    const keyIds = keyDecls.map((k) => k.row.id);
    // Stale keys first, so a key moved to a new id does not collide with its old row's hash.
    // (These deletes remove exactly what planSync listed as removed.)
    tx.delete(apiKeys)
      .where(and(eq(apiKeys.source, "file"), notInArray(apiKeys.id, keyIds)))
      .run();
    // Updates leave `uid` as it is: counters keep counting the same tenant or key.
    for (const [i, { row }] of tenantDecls.entries()) {
      progress?.("syncing tenants", i, tenantDecls.length);
      tx.insert(tenants)
        .values(row)
        .onConflictDoUpdate({ target: tenants.id, set: { ...row, createdAt: undefined } })
        .run();
    }
    for (const [i, { row }] of keyDecls.entries()) {
      progress?.("syncing keys", i, keyDecls.length);
      // An adopted key keeps how listings show it, and its rotation's previous secret until the grace
      // period ends (the update leaves previousHash and graceUntil alone).
      const kept = adopted.keys.has(row.id) ? { prefix: undefined, last4: undefined } : {};
      tx.insert(apiKeys)
        .values(row)
        .onConflictDoUpdate({ target: apiKeys.id, set: { ...row, ...kept, createdAt: undefined } })
        .run();
    }
    // Stale tenants last, once the keys moved out of them are updated: the delete cascades to no key
    // (the guard made sure no API-made key still belongs to one).
    tx.delete(tenants)
      .where(and(eq(tenants.source, "file"), notInArray(tenants.id, tenantIds)))
      .run();

    tx.insert(auditLog)
      .values({
        ts: now,
        actor: `config:${loaded.file}`,
        action: "config.sync",
        objectType: "config",
        objectId: loaded.hash.slice(0, 12),
        after: JSON.stringify(plan.changes),
      })
      .run();
    const facts: [string, string][] = [
      [CONFIG_HASH, loaded.hash],
      [CONFIG_PARTS, JSON.stringify(plan.parts)],
    ];
    for (const [key, value] of facts) {
      tx.insert(meta)
        .values({ key, value, updatedAt: now })
        .onConflictDoUpdate({ target: meta.key, set: { value, updatedAt: now } })
        .run();
    }
    verify?.(tx);
  });
  return { changed: true, tenants: declared.length, keys: keyCount };
}

export interface SyncPlan {
  tenants: (DeclaredTenant & { row: TenantRow })[];
  keys: (DeclaredKey & { row: KeyRow })[];
  adopted: Adoptions;
  /** Why the sync is refused (it then writes nothing); empty when it may go ahead. */
  issues: ConfigIssue[];
  /** What the sync changes, for its audit entry and `gatehouse diff`. Never a secret. */
  changes: SyncChanges;
  parts: Parts;
}

/** What syncing `loaded` into the database would do, read without writing anything. */
export function planSync(tx: Pick<Db, "select">, loaded: LoadedConfig, now: number): SyncPlan {
  const declared = Object.entries(loaded.config.tenants ?? {});
  const stored = readStored(tx);
  const tenantDecls = declared.map(([id, decl]) => ({
    id,
    decl,
    row: tenantRow(id, decl, loaded.sourceRef(["tenants", id]), now),
  }));
  const keyDecls = declared.flatMap(([tenantId, t]) =>
    (t.keys ?? []).map((decl, index) => ({
      tenantId,
      index,
      decl,
      row: keyRow(tenantId, decl, loaded.sourceRef(["tenants", tenantId, "keys", index]), now),
    })),
  );
  const { issues, adopted } = guardApiObjects(loaded, stored, tenantDecls, keyDecls);
  const staleOf = <S extends { source: string }>(rows: ReadonlyMap<string, S>, declaredIds: Set<string>) =>
    [...rows].filter(([id, r]) => r.source === "file" && !declaredIds.has(id)).map(([id]) => ({ id }));
  const previousParts = tx.select({ value: meta.value }).from(meta).where(eq(meta.key, CONFIG_PARTS)).get();
  const parts = partsOf(loaded.config);
  const changes: SyncChanges = {
    tenants: objectChanges(
      tenantDecls.map((t) => [t.id, t.row]),
      stored.tenants,
      adopted.tenants,
      staleOf(stored.tenants, new Set(tenantDecls.map((t) => t.id))),
      (a: StoredTenant, b) => tenantChanges(a, b),
    ),
    keys: objectChanges(
      keyDecls.map((k) => [k.row.id, k.row]),
      stored.keys,
      adopted.keys,
      staleOf(stored.keys, new Set(keyDecls.map((k) => k.row.id))),
      (a: StoredKey, b) => keyChanges(a, b),
    ),
    ...diffParts(previousParts && (JSON.parse(previousParts.value) as Parts), parts),
  };
  return { tenants: tenantDecls, keys: keyDecls, adopted, issues, changes, parts };
}

function readStored(tx: Pick<Db, "select">): Stored {
  const tenantRows = tx
    .select({
      id: tenants.id,
      name: tenants.name,
      plan: tenants.plan,
      metadata: tenants.metadata,
      externalIds: tenants.externalIds,
      upstreams: tenants.upstreams,
      credentials: tenants.credentials,
      policies: tenants.policies,
      disabled: tenants.disabled,
      source: tenants.source,
    })
    .from(tenants)
    .all();
  const keyRows = tx
    .select({
      id: apiKeys.id,
      tenantId: apiKeys.tenantId,
      name: apiKeys.name,
      metadata: apiKeys.metadata,
      hash: apiKeys.hash,
      previousHash: apiKeys.previousHash,
      expiresAt: apiKeys.expiresAt,
      disabled: apiKeys.disabled,
      limits: apiKeys.limits,
      rules: apiKeys.rules,
      quota: apiKeys.quota,
      source: apiKeys.source,
    })
    .from(apiKeys)
    .all();
  return {
    tenants: new Map(tenantRows.map((r) => [r.id, r])),
    keys: new Map(keyRows.map((r) => [r.id, r])),
  };
}

function objectChanges<S extends { source: string }, R>(
  declared: [string, R][],
  stored: ReadonlyMap<string, S>,
  adopted: ReadonlySet<string>,
  removed: { id: string }[],
  fieldsChanged: (before: S, after: R) => string[],
): ObjectChanges {
  const out: ObjectChanges = { added: [], changed: {}, removed: removed.map((r) => r.id), adopted: [] };
  for (const [id, row] of declared) {
    const before = stored.get(id);
    if (before === undefined) out.added.push(id);
    else if (adopted.has(id)) out.adopted.push(id);
    else {
      const fields = fieldsChanged(before, row);
      if (fields.length) out.changed[id] = fields;
    }
  }
  return out;
}

type TenantRow = ReturnType<typeof tenantRow>;
type KeyRow = ReturnType<typeof keyRow>;

function tenantRow(id: string, t: TenantDecl, sourceRef: string, now: number) {
  return {
    id,
    name: t.name ?? id,
    plan: t.plan,
    metadata: JSON.stringify(t.metadata ?? {}),
    externalIds: JSON.stringify(t.externalIds ?? []),
    upstreams: JSON.stringify(t.upstreams ?? {}),
    credentials: JSON.stringify(t.credentials ?? {}),
    policies: JSON.stringify({
      limits: t.limits,
      rules: t.rules,
      quota: t.quota,
      concurrency: t.concurrency,
    }),
    disabled: t.disabled ?? false,
    source: "file" as const,
    sourceRef,
    createdAt: now,
    updatedAt: now,
  };
}

function keyRow(tenantId: string, k: KeyDecl, sourceRef: string, now: number) {
  return {
    id: k.id,
    tenantId,
    name: k.name ?? null,
    metadata: JSON.stringify(k.metadata ?? {}),
    hash: k.secret !== undefined ? hashKey(k.secret) : k.hash!,
    prefix: "",
    last4: k.secret !== undefined ? k.secret.slice(-4) : "",
    limits: JSON.stringify(k.limits ?? []),
    rules: JSON.stringify(k.rules ?? []),
    quota: k.quota ? JSON.stringify(k.quota) : null,
    disabled: k.disabled ?? false,
    expiresAt: k.expires ? Date.parse(k.expires) : null,
    source: "file" as const,
    sourceRef,
    createdAt: now,
    updatedAt: now,
  };
}
