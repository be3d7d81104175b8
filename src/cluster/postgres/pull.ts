/**
 * Reads what changed in the shared objects since a version, in one read-only snapshot: the rows whose
 * version is higher, the tombstones of what was deleted, and the audit entries other nodes wrote.
 * Versions are given out under a row lock and become visible in that order (publish.ts), so a
 * snapshot at version V holds every change up to V and none after.
 */
import { and, asc, eq, gt, ne } from "drizzle-orm";
import type { Kind } from "./capture.ts";
import type { Pg } from "./connect.ts";
import * as pg from "./schema.ts";

export type SharedTenant = typeof pg.tenants.$inferSelect;
export type SharedKey = typeof pg.apiKeys.$inferSelect;
export type SharedCredential = typeof pg.credentials.$inferSelect;
export type SharedAudit = typeof pg.auditLog.$inferSelect;

export interface Pulled {
  /** The version the node holds once this is applied. */
  version: number;
  /** Every shared object, not only the changed ones: the node drops what it holds beyond them. */
  full: boolean;
  tenants: SharedTenant[];
  keys: SharedKey[];
  credentials: SharedCredential[];
  tombstones: { kind: Kind; id: string }[];
  audit: SharedAudit[];
}

/**
 * What changed after `since` (everything when `since` is null), or null when nothing did. Audit
 * entries are those after `auditAfter` that another node wrote: a node has its own already.
 */
export async function pullChanges(
  db: Pg["db"],
  since: number | null,
  auditAfter: number,
  node: string,
): Promise<Pulled | null> {
  return db.transaction(
    async (tx) => {
      const [state] = await tx.select({ version: pg.clusterState.version }).from(pg.clusterState);
      const version = state?.version ?? 0;
      if (since !== null && version <= since) return null;
      const after = since ?? -1;
      return {
        version,
        full: since === null,
        tenants: await tx.select().from(pg.tenants).where(gt(pg.tenants.version, after)),
        keys: await tx.select().from(pg.apiKeys).where(gt(pg.apiKeys.version, after)),
        credentials: await tx.select().from(pg.credentials).where(gt(pg.credentials.version, after)),
        tombstones:
          since === null
            ? []
            : await tx
                .select({ kind: pg.tombstones.kind, id: pg.tombstones.id })
                .from(pg.tombstones)
                .where(gt(pg.tombstones.version, since)),
        audit: await tx
          .select()
          .from(pg.auditLog)
          .where(and(gt(pg.auditLog.id, auditAfter), ne(pg.auditLog.node, node)))
          .orderBy(asc(pg.auditLog.id)),
      };
    },
    { isolationLevel: "repeatable read", accessMode: "read only" },
  );
}

/** The cluster's current version: one cheap read, to see whether a pull is needed. */
export async function currentVersion(db: Pg["db"]): Promise<number> {
  const [state] = await db
    .select({ version: pg.clusterState.version })
    .from(pg.clusterState)
    .where(eq(pg.clusterState.id, 1));
  return state?.version ?? 0;
}
