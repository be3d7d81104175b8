/**
 * Writes one control-API change (capture.ts) to PostgreSQL in one transaction: the cluster version is
 * bumped first (its row lock puts concurrent changes from all nodes in one order), every row written
 * carries the new version, deletions leave tombstones, the audit entries go in beside them, and a
 * NOTIFY tells the other nodes once it commits.
 *
 * A change is judged by the node against its copy of the shared objects as of version `base`. A row
 * that another node changed after that (its version is higher) is not overwritten: the change is
 * refused as a conflict, to be tried again once this node has caught up.
 */
import { and, eq, gt, lte, sql } from "drizzle-orm";
import type { Change, ChangeSet } from "./capture.ts";
import { describePgError, isUnreachable, type Pg, sqlState } from "./connect.ts";
import { SharedConflictError, SharedUnavailableError } from "./errors.ts";
import * as pg from "./schema.ts";

/** The channel nodes LISTEN on; the payload is the new version. */
export const CHANGES_CHANNEL = "gatehouse_changes";

type Tx = Parameters<Parameters<Pg["db"]["transaction"]>[0]>[0];

const NAMES = { tenant: "Tenant", key: "Key", credential: "Credential" } as const;

/** Returns the version the change was given. */
export async function publish(db: Pg["db"], set: ChangeSet, base: number, node: string): Promise<number> {
  try {
    return await db.transaction(async (tx) => {
      const [state] = await tx
        .update(pg.clusterState)
        .set({ version: sql`${pg.clusterState.version} + 1` })
        .where(eq(pg.clusterState.id, 1))
        .returning({ version: pg.clusterState.version });
      const version = state!.version;
      for (const change of set.changes) await write(tx, change, version, base);
      if (set.audit.length) await tx.insert(pg.auditLog).values(set.audit.map((a) => ({ ...a, node })));
      await tx.execute(sql`SELECT pg_notify(${CHANGES_CHANNEL}, ${String(version)})`);
      return version;
    });
  } catch (err) {
    if (err instanceof SharedConflictError) throw err;
    if (isUnreachable(err)) throw new SharedUnavailableError(describePgError(err));
    if (sqlState(err) === "23505") throw new SharedConflictError(duplicate(err, set));
    throw err;
  }
}

async function write(tx: Tx, c: Change, version: number, base: number): Promise<void> {
  const stale = () =>
    new SharedConflictError(
      `${NAMES[c.kind]} "${c.id}" was changed on another node after this node last caught up; try again.`,
    );
  const table = c.kind === "tenant" ? pg.tenants : c.kind === "key" ? pg.apiKeys : pg.credentials;
  const id =
    c.kind === "credential" ? pg.credentials.name : c.kind === "tenant" ? pg.tenants.id : pg.apiKeys.id;
  const unchangedSince = and(eq(id, c.id), lte(table.version, base));

  if (c.row === null) {
    if (c.op === "insert") return; // made and removed within the change
    const gone = await tx.delete(table).where(unchangedSince).returning({ id });
    // A key may already have gone with its tenant, earlier in this change.
    if (gone.length === 0 && !(await buriedAt(tx, c.kind, c.id, version))) throw stale();
    await bury(tx, c.kind, c.id, version);
    if (c.kind === "tenant") {
      // The tenant's keys go with it, also ones this node had not seen yet.
      const keys = await tx
        .delete(pg.apiKeys)
        .where(eq(pg.apiKeys.tenantId, c.id))
        .returning({ id: pg.apiKeys.id });
      for (const k of keys) await bury(tx, "key", k.id, version);
    }
    return;
  }
  if (c.op === "insert") {
    if (c.kind === "key") {
      const deleted = await tx
        .select({ version: pg.tombstones.version })
        .from(pg.tombstones)
        .where(
          and(
            eq(pg.tombstones.kind, "tenant"),
            eq(pg.tombstones.id, c.row.tenantId),
            gt(pg.tombstones.version, base),
          ),
        );
      if (deleted.length) {
        throw new SharedConflictError(`Tenant "${c.row.tenantId}" was deleted on another node.`);
      }
    }
    await tx.insert(table).values({ ...c.row, version } as never);
    return;
  }
  const updated = await tx
    .update(table)
    .set({ ...c.row, version } as never)
    .where(unchangedSince)
    .returning({ id });
  if (updated.length === 0) throw stale();
}

async function buriedAt(tx: Tx, kind: Change["kind"], id: string, version: number): Promise<boolean> {
  const rows = await tx
    .select({ version: pg.tombstones.version })
    .from(pg.tombstones)
    .where(and(eq(pg.tombstones.kind, kind), eq(pg.tombstones.id, id), eq(pg.tombstones.version, version)));
  return rows.length > 0;
}

async function bury(tx: Tx, kind: Change["kind"], id: string, version: number): Promise<void> {
  await tx
    .insert(pg.tombstones)
    .values({ kind, id, version })
    .onConflictDoUpdate({ target: [pg.tombstones.kind, pg.tombstones.id], set: { version } });
}

/** A unique violation: the id (or, for keys, the secret's hash) is taken. */
function duplicate(err: unknown, set: ChangeSet): string {
  const constraint = String(
    ((err as { cause?: unknown }).cause as { constraint?: unknown })?.constraint ?? "",
  );
  const inserted = set.changes.find((c) => c.op === "insert" && c.row !== null);
  if (constraint.endsWith("_pkey") && inserted) {
    return `${NAMES[inserted.kind]} "${inserted.id}" already exists (it was made on another node).`;
  }
  return "The change conflicts with one made on another node; try again.";
}
