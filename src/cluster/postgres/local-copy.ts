/**
 * The node's copy of the shared objects, in its own SQLite: what it serves from, also while
 * PostgreSQL is away, and what it starts from. Pulled changes are applied here in one transaction,
 * and so is the node's own change once PostgreSQL has taken it (publish.ts).
 *
 * A node applies what it can serve with its own config file: a tenant on a plan, upstream or
 * credential the file does not declare, a key of a tenant the node does not know, or an object the
 * file itself declares waits (and /readyz says so) until a reload lets it in. Deletions always apply,
 * so a key revoked anywhere stops working everywhere.
 */
import { and, eq, inArray, notInArray } from "drizzle-orm";
import type { GatewayConfig } from "../../config/schema.ts";
import type { Db, OpenDb } from "../../db/open.ts";
import { apiKeys, auditLog, credentials, meta, tenants } from "../../db/schema.ts";
import { SnapshotError } from "../../gateway/build-snapshot.ts";
import type { Log } from "../../lib/log.ts";
import type { Vault } from "../../vault/vault.ts";
import type { Kind } from "./capture.ts";
import type { Pulled, SharedCredential, SharedKey, SharedTenant } from "./pull.ts";

type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];

/** Rows to apply: a pull, the node's own change, or rows that waited. */
export interface Rows {
  /** The version the node holds afterwards; null leaves it as it is. */
  version: number | null;
  full: boolean;
  tenants: SharedTenant[];
  keys: SharedKey[];
  credentials: SharedCredential[];
  tombstones: { kind: Kind; id: string }[];
  audit: Pulled["audit"];
}

export interface ApplyContext {
  config: Omit<GatewayConfig, "tenants">;
  vault: Vault;
  /** Decrypted values of `rows.credentials`; undefined for one this node cannot read. */
  values: ReadonlyMap<string, string | undefined>;
  /** Throws when the result cannot be served (the snapshot build); the upserts then wait. */
  check?: (tx: Pick<Db, "select">) => void;
}

export interface Waiting {
  kind: "tenant" | "key";
  id: string;
  /** Why this node does not apply it, in words for /readyz and the log. */
  reason: string;
  row: SharedTenant | SharedKey;
}

const META = {
  cluster: "cluster_id",
  version: "cluster_version",
  audit: "cluster_audit",
  node: "cluster_node",
};

export class LocalCopy {
  /** Shared objects this node does not apply yet, by kind and id. */
  readonly waiting = new Map<string, Waiting>();

  constructor(
    private readonly database: OpenDb,
    private readonly log: Log,
  ) {}

  private get db(): Db {
    return this.database.db;
  }

  /** The version of the shared objects this copy holds (0 before the first pull). */
  get version(): number {
    return Number(this.fact(META.version) ?? 0);
  }

  /** The last audit entry of another node copied here. */
  get auditMark(): number {
    return Number(this.fact(META.audit) ?? 0);
  }

  /** The cluster this copy follows, or undefined when it never followed one. */
  get clusterId(): string | undefined {
    return this.fact(META.cluster);
  }

  /** This node's id in the cluster, made once and kept in its database. */
  nodeId(): string {
    let id = this.fact(META.node);
    if (id === undefined) {
      id = crypto.randomUUID();
      this.setFacts(this.db, [[META.node, id]]);
    }
    return id;
  }

  /** Starts following another cluster: its versions mean nothing here, so the next pull is a full one. */
  follow(clusterId: string): void {
    this.setFacts(this.db, [
      [META.cluster, clusterId],
      [META.version, "0"],
      [META.audit, "0"],
    ]);
  }

  /**
   * Applies rows in one transaction. Returns whether anything the snapshot reads changed, and the
   * credentials to forget once it committed (the vault already holds the new and changed ones).
   */
  apply(rows: Rows, ctx: ApplyContext): { changed: boolean; forget: string[] } {
    const undo: (() => void)[] = [];
    let changed = false;
    const forget: string[] = [];
    try {
      this.db.transaction((tx) => {
        for (const t of rows.tombstones) {
          this.waiting.delete(`${t.kind}:${t.id}`);
          if (this.remove(tx, t.kind, [t.id])) changed = true;
          if (t.kind === "credential") forget.push(t.id);
        }
        if (rows.full) {
          const dropped = this.dropAllBut(tx, rows);
          if (dropped.count) changed = true;
          forget.push(...dropped.credentials);
        }
        // Credentials first: tenants may name them, and no value can make a snapshot unservable.
        if (this.upsertCredentials(tx, rows, ctx, undo) > 0) changed = true;
        for (const r of [...rows.tenants, ...rows.keys])
          this.waiting.delete(`${"tenantId" in r ? "key" : "tenant"}:${r.id}`);
        const upserts = () =>
          tx.transaction((inner) => {
            const n = this.upsertObjects(inner, rows, ctx);
            ctx.check?.(inner);
            return n;
          });
        try {
          if (upserts() > 0) changed = true;
        } catch (err) {
          if (!(err instanceof SnapshotError)) throw err;
          // The savepoint is rolled back: nothing of these rows is applied; the rest stays.
          const reason = `this node cannot serve it: ${String((err as Error).message ?? err)}`;
          for (const row of rows.tenants) this.wait("tenant", row, reason);
          for (const row of rows.keys) this.wait("key", row, reason);
          this.log(
            "error",
            "shared objects cannot be applied with this node's config; they wait for a reload",
            {
              error: String((err as Error).message ?? err),
            },
          );
        }
        for (const a of rows.audit) {
          const { id: _, node: __, ...entry } = a;
          tx.insert(auditLog).values(entry).run();
        }
        const facts: [string, string][] = [];
        if (rows.version !== null) facts.push([META.version, String(rows.version)]);
        const lastAudit = rows.audit.reduce((n, a) => Math.max(n, a.id), this.auditMark);
        if (rows.audit.length) facts.push([META.audit, String(lastAudit)]);
        this.setFacts(tx, facts);
      });
    } catch (err) {
      for (const u of undo.reverse()) u();
      throw err;
    }
    return { changed, forget };
  }

  /** The rows that waited, to try again (after a reload). */
  waitingRows(): Rows {
    const rows: Rows = {
      version: null,
      full: false,
      tenants: [],
      keys: [],
      credentials: [],
      tombstones: [],
      audit: [],
    };
    for (const w of this.waiting.values()) {
      if (w.kind === "tenant") rows.tenants.push(w.row as SharedTenant);
      else rows.keys.push(w.row as SharedKey);
    }
    return rows;
  }

  private upsertCredentials(tx: Tx, rows: Rows, ctx: ApplyContext, undo: (() => void)[]): number {
    let n = 0;
    for (const row of rows.credentials) {
      const { version: _, ...values } = row;
      tx.insert(credentials)
        .values(values)
        .onConflictDoUpdate({ target: credentials.name, set: values })
        .run();
      const value = ctx.values.get(row.name);
      undo.push(
        value === undefined ? ctx.vault.markUnreadable(row.name) : ctx.vault.remember(row.name, value),
      );
      if (value === undefined) {
        this.log("error", "shared credential cannot be decrypted with this node's master key", {
          credential: row.name,
          fix: "give every node the same master key",
        });
      }
      n++;
    }
    return n;
  }

  private upsertObjects(tx: Tx, rows: Rows, ctx: ApplyContext): number {
    let n = 0;
    const names = rows.tenants.length ? tenantNames(tx) : new Map<string, string>();
    for (const row of rows.tenants) {
      const reason = this.tenantBlocked(tx, row, ctx, names);
      if (reason) {
        this.wait("tenant", row, reason);
        continue;
      }
      const { version: _, ...values } = row;
      tx.insert(tenants).values(values).onConflictDoUpdate({ target: tenants.id, set: values }).run();
      for (const name of namesOf(row)) names.set(name, row.id);
      n++;
    }
    for (const row of rows.keys) {
      const reason = this.keyBlocked(tx, row);
      if (reason) {
        this.wait("key", row, reason);
        continue;
      }
      const { version: _, ...values } = row;
      // A savepoint of its own: a secret that collides with another key's fails this row only.
      try {
        tx.transaction((one) =>
          one.insert(apiKeys).values(values).onConflictDoUpdate({ target: apiKeys.id, set: values }).run(),
        );
        n++;
      } catch (err) {
        if (!String((err as { code?: unknown }).code).startsWith("SQLITE_CONSTRAINT")) throw err;
        this.wait("key", row, "its secret is that of another key this node serves");
      }
    }
    return n;
  }

  private tenantBlocked(
    tx: Tx,
    row: SharedTenant,
    ctx: ApplyContext,
    names: ReadonlyMap<string, string>,
  ): string | undefined {
    const local = tx.select({ source: tenants.source }).from(tenants).where(eq(tenants.id, row.id)).get();
    if (local?.source === "file") return "this node's config file declares a tenant with that id";
    for (const name of namesOf(row)) {
      const owner = names.get(name);
      if (owner !== undefined && owner !== row.id) return `"${name}" names tenant "${owner}" on this node`;
    }
    const { plans, upstreams } = ctx.config;
    if (!plans[row.plan]) return `plan "${row.plan}" is not declared in this node's config`;
    const overrides = JSON.parse(row.upstreams) as Record<string, string>;
    for (const name of Object.entries(overrides).flat()) {
      if (!upstreams[name]) return `upstream "${name}" is not declared in this node's config`;
    }
    const own = JSON.parse(row.credentials) as Record<string, string>;
    for (const name of Object.values(own)) {
      if (!ctx.vault.has(name)) return `credential "${name}" is not stored`;
    }
    return undefined;
  }

  private keyBlocked(tx: Tx, row: SharedKey): string | undefined {
    const local = tx.select({ source: apiKeys.source }).from(apiKeys).where(eq(apiKeys.id, row.id)).get();
    if (local?.source === "file") return "this node's config file declares a key with that id";
    if (!tx.select({ id: tenants.id }).from(tenants).where(eq(tenants.id, row.tenantId)).get()) {
      return `its tenant "${row.tenantId}" is not known to this node`;
    }
    return undefined;
  }

  private wait(kind: "tenant" | "key", row: SharedTenant | SharedKey, reason: string): void {
    const key = `${kind}:${row.id}`;
    if (this.waiting.get(key)?.reason !== reason) {
      this.log("warn", "shared object waits: this node does not serve it yet", { [kind]: row.id, reason });
    }
    this.waiting.set(key, { kind, id: row.id, reason, row });
  }

  /** Removes API-made rows (never the file's); returns whether any was there. */
  private remove(tx: Tx, kind: Kind, ids: string[]): boolean {
    if (ids.length === 0) return false;
    const removed =
      kind === "tenant"
        ? tx
            .delete(tenants)
            .where(and(inArray(tenants.id, ids), eq(tenants.source, "api")))
            .returning({ id: tenants.id })
            .all()
        : kind === "key"
          ? tx
              .delete(apiKeys)
              .where(and(inArray(apiKeys.id, ids), eq(apiKeys.source, "api")))
              .returning({ id: apiKeys.id })
              .all()
          : tx
              .delete(credentials)
              .where(inArray(credentials.name, ids))
              .returning({ id: credentials.name })
              .all();
    return removed.length > 0;
  }

  /** A full pull: API-made rows PostgreSQL no longer holds go (their tombstones may be long gone). */
  private dropAllBut(tx: Tx, rows: Rows): { count: number; credentials: string[] } {
    const keep = (ids: string[]) => (ids.length ? ids : [""]);
    const keys = tx
      .delete(apiKeys)
      .where(and(eq(apiKeys.source, "api"), notInArray(apiKeys.id, keep(rows.keys.map((k) => k.id)))))
      .returning({ id: apiKeys.id })
      .all();
    const gone = tx
      .delete(tenants)
      .where(and(eq(tenants.source, "api"), notInArray(tenants.id, keep(rows.tenants.map((t) => t.id)))))
      .returning({ id: tenants.id })
      .all();
    const creds = tx
      .delete(credentials)
      .where(notInArray(credentials.name, keep(rows.credentials.map((c) => c.name))))
      .returning({ name: credentials.name })
      .all();
    for (const w of [...this.waiting.keys()]) this.waiting.delete(w);
    return { count: keys.length + gone.length + creds.length, credentials: creds.map((c) => c.name) };
  }

  private fact(key: string): string | undefined {
    return this.db.select({ value: meta.value }).from(meta).where(eq(meta.key, key)).get()?.value;
  }

  private setFacts(tx: Pick<Db, "insert">, facts: [string, string][]): void {
    for (const [key, value] of facts) {
      tx.insert(meta).values({ key, value }).onConflictDoUpdate({ target: meta.key, set: { value } }).run();
    }
  }
}

/** Every name a token may give a tenant by (its id and external ids) → the tenant, as stored now. */
function tenantNames(tx: Tx): Map<string, string> {
  const names = new Map<string, string>();
  for (const t of tx.select({ id: tenants.id, externalIds: tenants.externalIds }).from(tenants).all()) {
    for (const name of namesOf(t)) names.set(name, t.id);
  }
  return names;
}

function namesOf(t: { id: string; externalIds: string }): string[] {
  return [t.id, ...(JSON.parse(t.externalIds) as string[])];
}
