/**
 * What every admin service shares: the database, the running state, the clock and the audit log,
 * and the one way to commit a change. A change commits only if the gateway can still build its
 * snapshot from the result, and the data plane sees it on the next request.
 */

import { SharedConflictError, SharedUnavailableError } from "../cluster/postgres/errors.ts";
import { checkReferences } from "../config/check-references.ts";
import { formatPath } from "../config/errors.ts";
import type { TenantDecl } from "../config/schema.ts";
import type { Db, OpenDb } from "../db/open.ts";
import { buildSnapshot, SnapshotError } from "../gateway/build-snapshot.ts";
import type { GatewayState } from "../gateway/state.ts";
import type { Clock } from "../lib/clock.ts";
import { OVERRIDE_HINT, overrideProblem } from "../vault/references.ts";
import type { AuditService } from "./audit/service.ts";
import { badRequest, conflict, storeUnavailable } from "./problem.ts";

export interface AdminStore {
  database: OpenDb;
  state: GatewayState;
  clock: Clock;
  audit: AuditService;
  /** Cluster mode: changes go through PostgreSQL to every node (see cluster/postgres/shared-objects.ts). */
  shared?: SharedCommit;
}

type Tx = Parameters<Parameters<Db["transaction"]>[0]>[0];

/** Makes a change to the shared objects: tried on this node's copy, kept in PostgreSQL, then applied. */
export interface SharedCommit {
  commit<T>(change: (tx: Tx) => T, check: (tx: Tx) => void): Promise<T>;
}

/**
 * Commits `change` with its audit entry; the data plane serves the result from the next request on.
 * On one node that is one SQLite transaction; in cluster mode the answer waits for PostgreSQL.
 */
export async function commit<T>(store: AdminStore, change: (tx: Tx) => T): Promise<T> {
  const check = (tx: Tx) => {
    try {
      buildSnapshot(store.state.config.config, tx, store.state.snapshot.version + 1, store.state.vault);
    } catch (err) {
      // Throwing rolls the transaction back: nothing of the change is kept.
      if (err instanceof SnapshotError) throw badRequest(`The change cannot be served: ${err.message}.`);
      throw err;
    }
  };
  if (store.shared) {
    try {
      return await store.shared.commit(change, check);
    } catch (err) {
      if (err instanceof SharedConflictError) throw conflict(err.message);
      if (err instanceof SharedUnavailableError) throw storeUnavailable(err.message);
      throw err;
    }
  }
  const result = store.database.db.transaction((tx) => {
    const out = change(tx);
    check(tx);
    return out;
  });
  store.state.rebuild();
  return result;
}

/** Declared objects belong to the file: the 409 names where, so people know what to edit instead. */
export function assertApiOwned(
  row: { source: string; sourceRef: string | null },
  what: string,
  file: string,
): void {
  if (row.source === "api") return;
  const where = row.sourceRef ?? file;
  throw conflict(
    `${what} is declared in ${where}; change it there (objects from the config file are read-only here).`,
  );
}

/**
 * Checks a tenant as if it were declared in the running config: plan and upstream names must exist,
 * its own credentials must be stored and replace an upstream's one credential,
 * patterns must parse, time zones must be known and limit names unique, exactly as `validate` would.
 * `decl.keys` are the keys the tenant will have, so their limit names are checked against its own.
 */
export function checkTenant(store: AdminStore, id: string, decl: TenantDecl): void {
  const config = store.state.config.config;
  const plans = Object.keys(config.plans);
  const upstreams = Object.keys(config.upstreams);
  if (!config.plans[decl.plan]) {
    throw badRequest(`Unknown plan "${decl.plan}"; the running config declares: ${plans.join(", ")}.`);
  }
  for (const [from, to] of Object.entries(decl.upstreams ?? {})) {
    for (const name of [from, to]) {
      if (!config.upstreams[name]) {
        throw badRequest(
          `Unknown upstream "${name}" in upstreams; the running config declares: ${upstreams.join(", ")}.`,
        );
      }
    }
  }
  for (const [upstream, credential] of Object.entries(decl.credentials ?? {})) {
    const problem = overrideProblem(config, upstream);
    if (problem) throw badRequest(`credentials.${upstream}: ${problem} (${OVERRIDE_HINT}).`);
    if (!store.state.vault.has(credential)) {
      throw badRequest(
        `credentials.${upstream}: no credential named "${credential}" is stored; store it first with PUT /credentials/${credential}.`,
      );
    }
  }
  const issues = checkReferences({ ...config, tenants: { [id]: decl } })
    .filter((i) => i.path[0] === "tenants" && i.path[1] === id)
    .map((i) => {
      // Keys are named by id: their position in a list the caller made up means nothing to anyone.
      const key = i.path[2] === "keys" ? decl.keys?.[i.path[3] as number] : undefined;
      const at = key ? `key "${key.id}" ${formatPath(i.path.slice(4))}`.trim() : formatPath(i.path.slice(2));
      return `${at ? `${at}: ` : ""}${i.message}${i.hint ? ` (${i.hint})` : ""}`;
    });
  if (issues.length) throw badRequest(`The tenant is invalid: ${issues.join("; ")}.`, issues);
}
