/**
 * The append-only audit log of control API changes: who (admin@client address), what, and the
 * object before and after, with secrets and hashes masked. Rows are only ever inserted.
 */
import { and, desc, eq, lt, type SQL } from "drizzle-orm";
import type { Db, OpenDb } from "../../db/open.ts";
import { auditLog } from "../../db/schema.ts";
import type { Clock } from "../../lib/clock.ts";
import { iso } from "../fields.ts";
import { pageOf } from "../pagination.ts";
import { badRequest } from "../problem.ts";

/** Anything in this set is replaced by "***" wherever it appears in a before/after image. */
const MASKED = new Set(["hash", "previousHash", "secret", "token", "adminToken"]);

export function mask(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(mask);
  if (value && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, MASKED.has(k) && v !== null ? "***" : mask(v)]),
    );
  }
  return value;
}

export interface AuditEntry {
  actor: string;
  action: string;
  objectType: string;
  objectId: string;
  before?: unknown;
  after?: unknown;
}

export interface AuditFilter {
  objectType?: string;
  objectId?: string;
}

export class AuditService {
  constructor(
    private readonly database: OpenDb,
    private readonly clock: Clock,
  ) {}

  /** Writes inside the caller's transaction, so a change and its record commit together. */
  record(tx: Pick<Db, "insert">, e: AuditEntry): void {
    tx.insert(auditLog)
      .values({
        ts: this.clock.now(),
        actor: e.actor,
        action: e.action,
        objectType: e.objectType,
        objectId: e.objectId,
        before: e.before === undefined ? null : JSON.stringify(mask(e.before)),
        after: e.after === undefined ? null : JSON.stringify(mask(e.after)),
      })
      .run();
  }

  /** Newest first. */
  list(limit: number, cursor: string | undefined, filter: AuditFilter = {}) {
    const where: SQL[] = [];
    if (cursor !== undefined) {
      if (!/^[0-9]{1,15}$/.test(cursor)) throw badRequest("The cursor is not one this API issued.");
      where.push(lt(auditLog.id, Number(cursor)));
    }
    if (filter.objectType) where.push(eq(auditLog.objectType, filter.objectType));
    if (filter.objectId) where.push(eq(auditLog.objectId, filter.objectId));
    const rows = this.database.db
      .select()
      .from(auditLog)
      .where(and(...where))
      .orderBy(desc(auditLog.id))
      .limit(limit + 1)
      .all();
    return pageOf(
      rows,
      limit,
      (r) => ({
        id: r.id,
        at: iso(r.ts),
        actor: r.actor,
        action: r.action,
        objectType: r.objectType,
        objectId: r.objectId,
        before: r.before === null ? null : (JSON.parse(r.before) as unknown),
        after: r.after === null ? null : (JSON.parse(r.after) as unknown),
      }),
      (r) => r.id,
    );
  }
}
