/**
 * What a sync may do to the tenants and keys made through the control API: nothing that deletes them
 * or silently takes them over. The file may adopt an API object only by declaring it exactly as
 * `gatehouse export` prints it; every other clash, and every API object the new file could no longer
 * serve, is a located error naming that object and the way out.
 */
import type { ConfigIssue } from "../config/errors.ts";
import type { LoadedConfig } from "../config/load.ts";
import type { KeyDecl, LimitDecl, QuotaDecl, TenantDecl } from "../config/schema.ts";
import { limitName, quotaName } from "../gateway/compile-policies.ts";
import { overrideProblem } from "../vault/references.ts";
import {
  type KeyColumns,
  keyChanges,
  type TenantColumns,
  type TenantPolicies,
  tenantChanges,
} from "./declarations.ts";
import type { Source } from "./schema.ts";

export interface StoredTenant extends TenantColumns {
  id: string;
  source: Source;
}

export interface StoredKey extends KeyColumns {
  tenantId: string;
  previousHash: string | null;
  source: Source;
}

/** The tenants and keys in the database before the sync. */
export interface Stored {
  tenants: ReadonlyMap<string, StoredTenant>;
  keys: ReadonlyMap<string, StoredKey>;
}

export interface DeclaredTenant {
  id: string;
  decl: TenantDecl;
  row: TenantColumns;
}

export interface DeclaredKey {
  tenantId: string;
  /** Position in the tenant's `keys:`. */
  index: number;
  decl: KeyDecl;
  row: KeyColumns & { tenantId: string };
}

/** API-made objects the file declares exactly as they are: the sync makes them file-owned. */
export interface Adoptions {
  tenants: Set<string>;
  keys: Set<string>;
}

type Path = (string | number)[];

const API = "created through the control API";
const EXPORT_RULE = "exactly as `gatehouse export` prints it";

/** Lists at most a few items, so one message stays readable whatever the numbers. */
function some(items: string[], max = 5): string {
  const shown = items.slice(0, max).join(", ");
  return items.length > max ? `${shown} and ${items.length - max} more` : shown;
}

const quoted = (names: string[]) => names.map((n) => `"${n}"`);

export function guardApiObjects(
  loaded: LoadedConfig,
  stored: Stored,
  tenants: readonly DeclaredTenant[],
  keys: readonly DeclaredKey[],
): { issues: ConfigIssue[]; adopted: Adoptions } {
  const { config } = loaded;
  const issues: ConfigIssue[] = [];
  const adopted: Adoptions = { tenants: new Set(), keys: new Set() };
  const declaredTenants = new Set(tenants.map((t) => t.id));
  const declaredKeys = new Set(keys.map((k) => k.row.id));

  for (const t of tenants) {
    const row = stored.tenants.get(t.id);
    if (row?.source !== "api") continue;
    const diff = tenantChanges(row, t.row);
    if (diff.length === 0) adopted.tenants.add(t.id);
    else {
      issues.push(
        loaded.issue(
          ["tenants", t.id],
          `tenant "${t.id}" was ${API}, and this declaration differs from it in ${diff.join(", ")}; ` +
            `the file takes over an API-made tenant only when it declares it ${EXPORT_RULE}. ` +
            `Declare it so, give this tenant another id, or delete the API tenant first (DELETE /tenants/${t.id})`,
          undefined,
          true,
        ),
      );
    }
  }

  // Who holds each hash, current and previous: a declared secret must not already open another key.
  // A previous secret counts even after its grace period: the snapshot would still map it to its key.
  const holders = new Map<string, { key: StoredKey; previous: boolean }>();
  for (const key of stored.keys.values()) {
    holders.set(key.hash, { key, previous: false });
    if (key.previousHash !== null) holders.set(key.previousHash, { key, previous: true });
  }
  for (const k of keys) {
    const path: Path = ["tenants", k.tenantId, "keys", k.index];
    const id = k.row.id;
    const row = stored.keys.get(id);
    if (row?.source === "api") {
      const diff = keyChanges(row, k.row);
      if (diff.length === 0) adopted.keys.add(id);
      else {
        issues.push(
          loaded.issue(
            [...path, "id"],
            `key "${id}" was ${API} for tenant "${row.tenantId}", and this declaration differs from it in ` +
              `${diff.join(", ")}; the file takes over an API-made key only when it declares it ${EXPORT_RULE}, ` +
              `under its tenant. Declare it so, give this key another id, or revoke the API key first (DELETE /keys/${id})`,
          ),
        );
      }
    }
    const holder = holders.get(k.row.hash);
    if (holder === undefined || holder.key.id === id) continue;
    // A file key that is no longer declared is removed first, so its secret is free to move.
    const survives = holder.key.source === "api" || (holder.previous && declaredKeys.has(holder.key.id));
    if (!survives) continue;
    const api = holder.key.source === "api";
    issues.push(
      loaded.issue(
        [...path, k.decl.secret !== undefined ? "secret" : "hash"],
        `this is also ${holder.previous ? "the previous secret (replaced by a rotation)" : "the secret"} ` +
          `of key "${holder.key.id}" of tenant "${holder.key.tenantId}"${api ? `, ${API}` : ""}; give this key its own secret` +
          (api ? `, or revoke that key first (DELETE /keys/${holder.key.id})` : ""),
      ),
    );
  }

  const apiKeysOf = new Map<string, StoredKey[]>();
  for (const key of stored.keys.values()) {
    if (key.source !== "api" || adopted.keys.has(key.id)) continue;
    const list = apiKeysOf.get(key.tenantId);
    if (list) list.push(key);
    else apiKeysOf.set(key.tenantId, [key]);
  }

  for (const row of stored.tenants.values()) {
    if (declaredTenants.has(row.id)) continue;
    if (row.source === "file") {
      const orphans = apiKeysOf.get(row.id);
      if (orphans) {
        issues.push(
          loaded.issue(
            ["tenants"],
            `tenant "${row.id}" is no longer declared, but keys ${API} belong to it (${some(quoted(orphans.map((k) => k.id)))}), ` +
              "and a reload never deletes those; revoke them first (DELETE /keys/{id}), or keep declaring the tenant",
            undefined,
            true,
          ),
        );
      }
      continue;
    }
    if (!config.plans[row.plan]) {
      issues.push(
        loaded.issue(
          ["plans"],
          `tenant "${row.id}", ${API}, uses plan "${row.plan}", which this file no longer declares; ` +
            `keep the plan, or move the tenant to another plan first (PATCH /tenants/${row.id})`,
          undefined,
          true,
        ),
      );
    }
    const overrides = JSON.parse(row.upstreams) as Record<string, string>;
    for (const [from, to] of Object.entries(overrides)) {
      const missing = [...new Set([from, to])].filter((u) => !config.upstreams[u]);
      if (missing.length === 0) continue;
      issues.push(
        loaded.issue(
          ["upstreams"],
          `tenant "${row.id}", ${API}, routes upstream "${from}" to "${to}", and this file no longer declares ` +
            `${some(quoted(missing))}; keep the upstream, or change the tenant's upstreams first (PATCH /tenants/${row.id})`,
          undefined,
          true,
        ),
      );
    }
    const ownCredentials = JSON.parse(row.credentials) as Record<string, string>;
    for (const upstream of Object.keys(ownCredentials)) {
      const problem = overrideProblem(config, upstream);
      if (!problem) continue;
      issues.push(
        loaded.issue(
          config.upstreams[upstream] ? ["upstreams", upstream, "headers"] : ["upstreams"],
          `tenant "${row.id}", ${API}, has a credential of its own for upstream "${upstream}", and now ${problem}; ` +
            `keep the upstream's one credential header, or change the tenant's credentials first (PATCH /tenants/${row.id})`,
          undefined,
          true,
        ),
      );
    }
  }

  issues.push(...nameClashes(loaded, stored, tenants, apiKeysOf, declaredTenants));
  return { issues, adopted };
}

interface Named {
  name: string;
  /** Where the file declares it, or undefined for an API object's. */
  path?: Path;
  /** The API object that declares it. */
  owner?: string;
}

const limitEntries = (limits: LimitDecl[] | undefined, quota: QuotaDecl | undefined) => [
  ...(limits ?? []).map((l, i) => ({ name: limitName(l), at: ["limits", i] as Path })),
  ...(quota ? [{ name: quotaName(quota), at: ["quota"] as Path }] : []),
];

/**
 * Names of the limits and quotas in force for one request must differ (they name the RateLimit
 * items). `validate` checks the file's own; this checks the file's against the API-made tenants and
 * keys the file's plans and tenants now apply to. Clashes between two API objects are not the
 * file's doing (the control API refuses them) and are left out.
 */
function nameClashes(
  loaded: LoadedConfig,
  stored: Stored,
  tenants: readonly DeclaredTenant[],
  apiKeysOf: ReadonlyMap<string, StoredKey[]>,
  declaredTenants: ReadonlySet<string>,
): ConfigIssue[] {
  const { config } = loaded;
  const clashes = new Map<string, { path: Path; name: string; owners: string[] }>();
  const clash = (file: Named, api: Named) => {
    const at = JSON.stringify(file.path);
    const seen = clashes.get(at);
    if (seen) seen.owners.push(api.owner!);
    else clashes.set(at, { path: file.path!, name: file.name, owners: [api.owner!] });
  };

  const check = (tenantId: string, plan: string, own: Named[]) => {
    const p = config.plans[plan];
    if (!p) return; // reported as a missing plan
    const inForce: Named[] = [
      ...limitEntries(p.limits, p.quota).map((e) => ({ name: e.name, path: ["plans", plan, ...e.at] })),
      ...own,
    ];
    const against = (entries: Named[]) => {
      for (const e of entries) {
        const other = inForce.find(
          (f) => f.name === e.name && (f.path !== undefined) !== (e.path !== undefined),
        );
        if (other) clash(other.path ? other : e, other.path ? e : other);
      }
    };
    // An API tenant's own names against its plan's.
    against(own.filter((e) => e.path === undefined));
    for (const key of apiKeysOf.get(tenantId) ?? []) {
      const keyQuota =
        key.quota === null ? undefined : { ...(JSON.parse(key.quota) as QuotaDecl), by: "key" as const };
      against(
        limitEntries(JSON.parse(key.limits) as LimitDecl[], keyQuota).map((e) => ({
          name: e.name,
          owner: `key "${key.id}" of tenant "${tenantId}"`,
        })),
      );
    }
  };

  for (const t of tenants) {
    check(
      t.id,
      t.decl.plan,
      limitEntries(t.decl.limits, t.decl.quota).map((e) => ({
        name: e.name,
        path: ["tenants", t.id, ...e.at],
      })),
    );
  }
  for (const row of stored.tenants.values()) {
    if (declaredTenants.has(row.id) || row.source !== "api") continue;
    const own = JSON.parse(row.policies) as TenantPolicies;
    check(
      row.id,
      row.plan,
      limitEntries(own.limits, own.quota).map((e) => ({ name: e.name, owner: `tenant "${row.id}"` })),
    );
  }

  return [...clashes.values()].map(({ path, name, owners }) =>
    loaded.issue(
      path,
      `a limit or quota named "${name}" is also in force here on ` +
        (owners.length === 1 ? `${owners[0]}, ${API}` : `${owners.length} objects ${API} (${some(owners)})`) +
        '; names in force for one request must differ, so give this one another name with name: "..."',
    ),
  );
}
