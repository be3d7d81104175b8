/**
 * A node meets a PostgreSQL it never followed (the cluster's first node, or a node that ran on its
 * own until now): the tenants, keys and credentials made through its control API go up first, so
 * turning cluster mode on loses none of them. What PostgreSQL already holds under the same id (or,
 * for a key, the same secret) wins; the node's own copy then follows PostgreSQL's.
 */
import { eq, sql } from "drizzle-orm";
import type { OpenDb } from "../../db/open.ts";
import { apiKeys, credentials, tenants } from "../../db/schema.ts";
import type { Log } from "../../lib/log.ts";
import type { Pg } from "./connect.ts";
import { CHANGES_CHANNEL } from "./publish.ts";
import * as pg from "./schema.ts";

/** Rows per INSERT: PostgreSQL takes at most 65535 parameters per statement. */
const CHUNK = 1000;

export async function uploadLocalObjects(db: Pg["db"], database: OpenDb, log: Log): Promise<void> {
  const local = database.db;
  const ownTenants = local.select().from(tenants).where(eq(tenants.source, "api")).all();
  const ownKeys = local
    .select()
    .from(apiKeys)
    .where(eq(apiKeys.source, "api"))
    .all()
    .map(({ lastUsedAt: _, ...k }) => k);
  const ownCredentials = local.select().from(credentials).all();
  if (ownTenants.length + ownKeys.length + ownCredentials.length === 0) return;

  const uploaded = await db.transaction(async (tx) => {
    const [state] = await tx
      .update(pg.clusterState)
      .set({ version: sql`${pg.clusterState.version} + 1` })
      .where(eq(pg.clusterState.id, 1))
      .returning({ version: pg.clusterState.version });
    const version = state!.version;
    // Credentials sealed under another master key than the cluster's could not be read by the others.
    const clusterKeys = new Set(
      (await tx.selectDistinct({ keyId: pg.credentials.keyId }).from(pg.credentials)).map((r) => r.keyId),
    );
    const sealedAlike = ownCredentials.filter((c) => clusterKeys.size === 0 || clusterKeys.has(c.keyId));
    if (sealedAlike.length < ownCredentials.length) {
      log("error", "credentials sealed under another master key than the cluster's are not shared", {
        credentials: ownCredentials.filter((c) => !sealedAlike.includes(c)).map((c) => c.name),
        fix: "give every node the same master key, then PUT them again",
      });
    }
    let count = 0;
    const insert = async (
      table: typeof pg.tenants | typeof pg.apiKeys | typeof pg.credentials,
      rows: object[],
    ) => {
      for (let i = 0; i < rows.length; i += CHUNK) {
        const values = rows.slice(i, i + CHUNK).map((r) => ({ ...r, version }));
        count += (
          await tx
            .insert(table)
            .values(values as never)
            .onConflictDoNothing()
            .returning()
        ).length;
      }
    };
    await insert(pg.tenants, ownTenants);
    await insert(pg.apiKeys, ownKeys);
    await insert(pg.credentials, sealedAlike);
    await tx.execute(sql`SELECT pg_notify(${CHANGES_CHANNEL}, ${String(version)})`);
    return count;
  });
  const offered = ownTenants.length + ownKeys.length + ownCredentials.length;
  log("info", "this node's API-made objects were shared through PostgreSQL", {
    shared: uploaded,
    alreadyThere: offered - uploaded,
  });
}
