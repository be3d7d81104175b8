/**
 * Declarative sync of gateway.yaml into SQLite, in one transaction. Rows the file declares are
 * marked `source = 'file'`; file rows the file no longer declares are removed. Rows created through
 * the control API (`source = 'api'`) are left alone, so they survive restarts and reloads.
 */
import { and, eq, notInArray } from "drizzle-orm";
import type { LoadedConfig } from "../config/load.ts";
import type { KeyDecl, TenantDecl } from "../config/schema.ts";
import type { Clock } from "../lib/clock.ts";
import { hashKey } from "../lib/key-hash.ts";
import type { Db, OpenDb } from "./open.ts";
import { apiKeys, auditLog, meta, tenants } from "./schema.ts";

export interface SyncReport {
  /** False when the database already held exactly this config. */
  changed: boolean;
  tenants: number;
  keys: number;
}

const CONFIG_HASH = "config_hash";

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
): SyncReport {
  const declared = Object.entries(loaded.config.tenants ?? {});
  const keyCount = declared.reduce((n, [, t]) => n + (t.keys?.length ?? 0), 0);
  if (lastSyncedHash({ db }) === loaded.hash) {
    verify?.(db);
    return { changed: false, tenants: declared.length, keys: keyCount };
  }

  const now = clock.now();
  db.transaction((tx) => {
    const tenantIds = declared.map(([id]) => id);
    const keyIds = declared.flatMap(([, t]) => (t.keys ?? []).map((k) => k.id));
    // Removals first, so a key moved to a new id does not collide with its old row's hash.
    const staleKeys = tx
      .delete(apiKeys)
      .where(and(eq(apiKeys.source, "file"), notInArray(apiKeys.id, keyIds)))
      .returning({ id: apiKeys.id })
      .all();
    const staleTenants = tx
      .delete(tenants)
      .where(and(eq(tenants.source, "file"), notInArray(tenants.id, tenantIds)))
      .returning({ id: tenants.id })
      .all();
    for (const [id, t] of declared) {
      const row = tenantRow(id, t, loaded.sourceRef(["tenants", id]), now);
      tx.insert(tenants)
        .values(row)
        .onConflictDoUpdate({ target: tenants.id, set: { ...row, createdAt: undefined } })
        .run();
      t.keys?.forEach((k, i) => {
        const key = keyRow(id, k, loaded.sourceRef(["tenants", id, "keys", i]), now);
        // A file key takes over an API key with the same secret rather than failing the sync.
        tx.delete(apiKeys)
          .where(and(eq(apiKeys.hash, key.hash), eq(apiKeys.source, "api")))
          .run();
        tx.insert(apiKeys)
          .values(key)
          .onConflictDoUpdate({
            target: apiKeys.id,
            set: { ...key, createdAt: undefined, lastUsedAt: undefined },
          })
          .run();
      });
    }
    tx.insert(auditLog)
      .values({
        ts: now,
        actor: `config:${loaded.file}`,
        action: "config.sync",
        objectType: "config",
        objectId: loaded.hash.slice(0, 12),
        after: JSON.stringify({
          tenants: tenantIds.length,
          keys: keyIds.length,
          removedTenants: staleTenants.map((r) => r.id),
          removedKeys: staleKeys.map((r) => r.id),
        }),
      })
      .run();
    tx.insert(meta)
      .values({ key: CONFIG_HASH, value: loaded.hash, updatedAt: now })
      .onConflictDoUpdate({ target: meta.key, set: { value: loaded.hash, updatedAt: now } })
      .run();
    verify?.(tx);
  });
  return { changed: true, tenants: declared.length, keys: keyCount };
}

function tenantRow(id: string, t: TenantDecl, sourceRef: string, now: number) {
  return {
    id,
    name: t.name ?? id,
    plan: t.plan,
    metadata: JSON.stringify(t.metadata ?? {}),
    upstreams: JSON.stringify(t.upstreams ?? {}),
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
    hash: k.secret !== undefined ? hashKey(k.secret) : k.hash!,
    prefix: "",
    last4: k.secret !== undefined ? k.secret.slice(-4) : "",
    previousHash: null,
    graceUntil: null,
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
