/**
 * A tenant's most recent refused requests, newest first, for the dashboard and the portal. Read from the
 * raw rows through the (tenant, ts) index, within [from, to), so a quiet tenant's search stops at `from`.
 */
import type { Database } from "bun:sqlite";
import { checkRange, checkTenant } from "./query.ts";

export interface RefusalQuery {
  tenant: string;
  /** Epoch ms, inclusive. */
  from: number;
  /** Epoch ms, exclusive. */
  to: number;
  /** At most this many (1 to 500). */
  limit: number;
}

export interface Refusal {
  at: string;
  requestId: string;
  keyId: string | null;
  route: string | null;
  method: string;
  path: string;
  status: number;
  /** The problem type's code: rate_limited, quota_exhausted, forbidden, ... */
  code: string;
}

export interface RefusalRow {
  ts: number;
  requestId: string;
  keyId: string | null;
  route: string | null;
  method: string;
  path: string;
  status: number;
  outcome: string;
}

export const REJECTED = "rejected:";

export function refusalReader(sqlite: Database) {
  const statement = sqlite.prepare<RefusalRow, [string, number, number, number]>(
    "SELECT ts, request_id AS requestId, key_id AS keyId, route, method, path, status, outcome FROM usage " +
      `WHERE tenant_id = ? AND ts >= ? AND ts < ? AND outcome LIKE '${REJECTED}%' ORDER BY ts DESC LIMIT ?`,
  );
  return (q: RefusalQuery): Refusal[] => {
    checkRefusalQuery(q);
    return statement.all(q.tenant, q.from, q.to, q.limit).map(refusalOf);
  };
}

/** Checks a refusal question before it is asked of any database. */
export function checkRefusalQuery(q: RefusalQuery): void {
  checkRange(q.from, q.to);
  checkTenant(q.tenant);
}

/** A raw usage row with a `rejected:` outcome, as the dashboard and the portal show it. */
export function refusalOf(r: RefusalRow): Refusal {
  return {
    at: new Date(r.ts).toISOString(),
    requestId: r.requestId,
    keyId: r.keyId,
    route: r.route,
    method: r.method,
    path: r.path,
    status: r.status,
    code: r.outcome.slice(REJECTED.length),
  };
}
