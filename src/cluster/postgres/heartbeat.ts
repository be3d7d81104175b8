/**
 * Each node says every second that it runs, with which config file (its content hash) and how far it
 * has caught up; every node reads who else ran recently. Times are PostgreSQL's own, so nodes whose
 * clocks disagree still agree on who is alive.
 */
import { hostname } from "node:os";
import { eq, sql } from "drizzle-orm";
import type { Pg } from "./connect.ts";
import { clusterNodes } from "./schema.ts";

/** A node that has not said anything for this long is taken for gone. */
export const ALIVE_SECONDS = 15;

export interface NodeBeat {
  node: string;
  host: string;
  pid: number;
  configHash: string;
  version: number;
}

/** This process, as a heartbeat names it. */
export const self = { host: hostname(), pid: process.pid };

/** Returns who wrote this node's row before (null for none), to tell a node on a copied database. */
export async function beat(
  db: Pg["db"],
  b: Omit<NodeBeat, "host" | "pid">,
): Promise<{ host: string; pid: number } | null> {
  const row = { ...b, ...self, seenAt: sql`now()` };
  const [before] = await db
    .select({ host: clusterNodes.host, pid: clusterNodes.pid })
    .from(clusterNodes)
    .where(eq(clusterNodes.node, b.node));
  await db.insert(clusterNodes).values(row).onConflictDoUpdate({ target: clusterNodes.node, set: row });
  return before ?? null;
}

export async function liveNodes(db: Pg["db"]): Promise<NodeBeat[]> {
  return db
    .select({
      node: clusterNodes.node,
      host: clusterNodes.host,
      pid: clusterNodes.pid,
      configHash: clusterNodes.configHash,
      version: clusterNodes.version,
    })
    .from(clusterNodes)
    .where(sql`${clusterNodes.seenAt} > now() - make_interval(secs => ${ALIVE_SECONDS})`)
    .orderBy(clusterNodes.node);
}

/** A node that stops says so, so that the others do not wait for its heartbeat to age. */
export async function leave(db: Pg["db"], node: string): Promise<void> {
  await db.delete(clusterNodes).where(eq(clusterNodes.node, node));
}

/** The /readyz words when the live nodes do not all run the same config, else null. */
export function configDisagreement(nodes: readonly NodeBeat[], self: string): string | null {
  const byHash = new Map<string, NodeBeat[]>();
  for (const n of nodes) byHash.set(n.configHash, [...(byHash.get(n.configHash) ?? []), n]);
  if (byHash.size <= 1) return null;
  const groups = [...byHash].map(([hash, on]) => {
    const names = on.map((n) => (n.node === self ? "this node" : `${n.host} pid ${n.pid}`));
    return `${on.length} on ${hash.slice(0, 12)} (${names.join(", ")})`;
  });
  return `Nodes run different config files: ${groups.join("; ")}. Deploy the same gateway.yaml to every node.`;
}
