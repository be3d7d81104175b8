/**
 * What a control-API change does to the shared objects, read off a trial run in SQLite. The services
 * keep writing their one copy of each query against the node's SQLite; in cluster mode the change
 * runs there in a transaction that is rolled back, and temporary triggers (on this connection only,
 * so nothing changes for one node) note which API-made tenants, keys and credentials and which audit
 * entries it wrote. Their images after the change are what goes to PostgreSQL (publish.ts); the node
 * then applies them back as it applies anyone's (apply.ts).
 */
import type { Database } from "bun:sqlite";
import { eq, inArray } from "drizzle-orm";
import type { Db } from "../../db/open.ts";
import { apiKeys, auditLog, credentials, tenants } from "../../db/schema.ts";

export type Kind = "tenant" | "key" | "credential";

export type TenantRow = typeof tenants.$inferSelect;
/** Each node keeps its own last-used times: they are not shared. */
export type KeyRow = Omit<typeof apiKeys.$inferSelect, "lastUsedAt">;
export type CredentialRow = typeof credentials.$inferSelect;
export type AuditRow = Omit<typeof auditLog.$inferSelect, "id">;

export type Change =
  | { kind: "tenant"; id: string; op: Op; row: TenantRow | null }
  | { kind: "key"; id: string; op: Op; row: KeyRow | null }
  | { kind: "credential"; id: string; op: Op; row: CredentialRow | null };

/** What happened to the row first in the change: an insert made it, anything else found it there. */
export type Op = "insert" | "update" | "delete";

export interface ChangeSet {
  changes: Change[];
  audit: AuditRow[];
}

/** Table, key column and which rows are shared (API-made ones; every credential). */
const WATCHED: [Kind, string, string, string | null][] = [
  ["tenant", "tenants", "id", "source = 'api'"],
  ["key", "api_keys", "id", "source = 'api'"],
  ["credential", "credentials", "name", null],
];

/**
 * Creates the temporary tables and triggers on this connection (once per connection). The triggers
 * note nothing unless a trial runs: its transaction puts the one row in cluster_capturing, and its
 * rollback takes that row and every note out again.
 */
export function installCapture(sqlite: Database): void {
  if (installed.has(sqlite)) return;
  sqlite.exec("CREATE TEMP TABLE IF NOT EXISTS cluster_capturing (on_ INTEGER NOT NULL)");
  sqlite.exec(
    "CREATE TEMP TABLE IF NOT EXISTS cluster_touched (kind TEXT NOT NULL, id TEXT NOT NULL, op TEXT NOT NULL)",
  );
  const note = (kind: string, id: string, op: string) =>
    // The first note of a row is kept: whether the row existed before the change. (Not INSERT OR
    // IGNORE: an upsert's own conflict clause would override it inside the trigger.)
    `INSERT INTO cluster_touched SELECT '${kind}', ${id}, '${op}' ` +
    `WHERE NOT EXISTS (SELECT 1 FROM cluster_touched WHERE kind = '${kind}' AND id = ${id})`;
  const capturing = "EXISTS (SELECT 1 FROM cluster_capturing)";
  for (const [kind, table, key, shared] of WATCHED) {
    for (const [op, row] of [
      ["insert", "NEW"],
      ["update", "NEW"],
      ["delete", "OLD"],
    ] as const) {
      const when = shared ? `${capturing} AND ${shared.replace("source", `${row}.source`)}` : capturing;
      sqlite.exec(
        `CREATE TEMP TRIGGER IF NOT EXISTS cluster_${table}_${op} AFTER ${op.toUpperCase()} ON main.${table} ` +
          `WHEN ${when} BEGIN ${note(kind, `${row}.${key}`, op)}; END`,
      );
    }
  }
  sqlite.exec(
    "CREATE TEMP TRIGGER IF NOT EXISTS cluster_audit_log_insert AFTER INSERT ON main.audit_log " +
      `WHEN ${capturing} BEGIN ${note("audit", "NEW.id", "insert")}; END`,
  );
  installed.add(sqlite);
}

/** Temporary objects belong to a connection: one reopened on a recreated file needs its own. */
const installed = new WeakSet<Database>();

/** Thrown to roll the trial back; carries what it found out. */
class TrialDone<T> extends Error {
  constructor(
    readonly result: T,
    readonly changes: ChangeSet,
  ) {
    super("trial run rolled back");
  }
}

/**
 * Runs `change` in a transaction on the node's SQLite and rolls it back; returns its result and what
 * it changed.
 */
export function trialRun<T>(
  db: Db,
  sqlite: Database,
  change: (tx: Parameters<Parameters<Db["transaction"]>[0]>[0]) => T,
): { result: T; changes: ChangeSet } {
  installCapture(sqlite);
  try {
    db.transaction((tx) => {
      sqlite.exec("INSERT INTO temp.cluster_capturing VALUES (1)");
      const result = change(tx);
      throw new TrialDone(result, readChanges(tx, sqlite));
    });
  } catch (err) {
    if (err instanceof TrialDone) return { result: err.result as T, changes: err.changes };
    throw err;
  }
  throw new Error("unreachable: the trial transaction always throws");
}

/** Reads inside the trial's transaction: `sqlite` is the connection it runs on. */
function readChanges(tx: Pick<Db, "select">, sqlite: Database): ChangeSet {
  const touched = sqlite
    .query<{ kind: Kind | "audit"; id: string; op: Op }, []>(
      "SELECT kind, id, op FROM temp.cluster_touched ORDER BY rowid",
    )
    .all();
  const changes: Change[] = [];
  const auditIds: number[] = [];
  for (const t of touched) {
    switch (t.kind) {
      case "tenant":
        changes.push({
          ...t,
          kind: t.kind,
          row: tx.select().from(tenants).where(eq(tenants.id, t.id)).get() ?? null,
        });
        break;
      case "key": {
        const row = tx.select().from(apiKeys).where(eq(apiKeys.id, t.id)).get();
        changes.push({ ...t, kind: t.kind, row: row ? withoutLastUsed(row) : null });
        break;
      }
      case "credential":
        changes.push({
          ...t,
          kind: t.kind,
          row: tx.select().from(credentials).where(eq(credentials.name, t.id)).get() ?? null,
        });
        break;
      case "audit":
        auditIds.push(Number(t.id));
        break;
    }
  }
  const audit = auditIds.length
    ? tx
        .select()
        .from(auditLog)
        .where(inArray(auditLog.id, auditIds))
        .orderBy(auditLog.id)
        .all()
        .map(({ id: _, ...row }) => row)
    : [];
  return { changes, audit };
}

function withoutLastUsed(row: typeof apiKeys.$inferSelect): KeyRow {
  const { lastUsedAt: _, ...rest } = row;
  return rest;
}
