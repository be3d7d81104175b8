/** Builds the immutable snapshot from the validated config and the tenants and keys in SQLite. */
import type { GatewayConfig, LimitDecl, QuotaDecl, RuleDecl } from "../config/schema.ts";
import type { Db } from "../db/open.ts";
import { apiKeys, tenants } from "../db/schema.ts";
import { compileLimit, compileQuota, compileRule } from "./compile-policies.ts";
import { compareSpecificity, parsePattern } from "./pattern.ts";
import type { CompiledRoute, KeyView, Snapshot, TenantView } from "./snapshot.ts";
import { compileUpstream, type UpstreamTarget } from "./upstream.ts";

/** A config that cannot serve the tenants the database holds (e.g. a plan an API tenant uses was removed). */
export class SnapshotError extends Error {}

/** The policies a tenant row may add to its plan's, stored as JSON. */
export interface TenantPolicies {
  limits?: LimitDecl[];
  rules?: RuleDecl[];
  quota?: QuotaDecl;
  concurrency?: number;
}

export function buildSnapshot(config: GatewayConfig, db: Pick<Db, "select">, version: number): Snapshot {
  const upstreams = new Map<string, UpstreamTarget>(
    Object.entries(config.upstreams).map(([name, d]) => [name, compileUpstream(name, d)]),
  );

  const routes: CompiledRoute[] = config.routes.map((r, index) => ({
    index,
    match: r.match,
    pattern: parsePattern(r.match),
    upstream: r.upstream,
    cost: r.cost ?? 1,
  }));
  // Most specific first; sort is stable, so ties keep file order.
  routes.sort((a, b) => compareSpecificity(a.pattern, b.pattern));

  const tenantViews = new Map<string, TenantView>();
  for (const row of db.select().from(tenants).all()) {
    const plan = config.plans[row.plan];
    if (!plan) {
      throw new SnapshotError(
        `tenant "${row.id}" uses plan "${row.plan}", which the config does not declare; ` +
          "declare the plan or move the tenant to another plan first",
      );
    }
    const own = JSON.parse(row.policies) as TenantPolicies;
    const overrides = new Map(Object.entries(JSON.parse(row.upstreams) as Record<string, string>));
    for (const [from, to] of overrides) {
      if (!upstreams.has(to)) {
        throw new SnapshotError(
          `tenant "${row.id}" routes "${from}" to upstream "${to}", which the config does not declare`,
        );
      }
    }
    tenantViews.set(row.id, {
      id: row.id,
      name: row.name,
      plan: row.plan,
      disabled: row.disabled,
      rules: [...(plan.rules ?? []), ...(own.rules ?? [])].map(compileRule),
      limits: [...(plan.limits ?? []), ...(own.limits ?? [])].map(compileLimit),
      quotas: [plan.quota, own.quota].filter((q): q is QuotaDecl => q !== undefined).map(compileQuota),
      concurrency: own.concurrency ?? plan.concurrency ?? null,
      upstreams: overrides,
    });
  }

  const keysByHash = new Map<string, KeyView>();
  for (const row of db.select().from(apiKeys).all()) {
    const view: KeyView = {
      id: row.id,
      tenantId: row.tenantId,
      expiresAt: row.expiresAt,
      disabled: row.disabled,
      graceUntil: null,
      limits: (JSON.parse(row.limits) as LimitDecl[]).map(compileLimit),
    };
    keysByHash.set(row.hash, view);
    if (row.previousHash && row.graceUntil !== null) {
      keysByHash.set(row.previousHash, { ...view, graceUntil: row.graceUntil });
    }
  }

  return { version, routes, upstreams, tenants: tenantViews, keysByHash };
}
