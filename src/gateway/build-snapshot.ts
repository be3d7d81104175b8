/** Builds the immutable snapshot from the validated config and the tenants and keys in SQLite. */
import type { GatewayConfig, LimitDecl, QuotaDecl, RuleDecl } from "../config/schema.ts";
import type { TenantPolicies } from "../db/declarations.ts";
import type { Db } from "../db/open.ts";
import { apiKeys, tenants } from "../db/schema.ts";
import { compileIdentity } from "../identity/compile.ts";
import { compileRouteTenancy, tenantsByName } from "../identity/snapshot.ts";
import { overrideProblem } from "../vault/references.ts";
import { type CredentialValues, noCredentials } from "../vault/vault.ts";
import { compileCostFrom, compileLimit, compileQuota, compileRule } from "./compile-policies.ts";
import { compareSpecificity, parsePattern } from "./pattern.ts";
import type { CompiledPlan, CompiledRoute, KeyView, Snapshot, TenantView } from "./snapshot.ts";
import { compileUpstream, type UpstreamTarget } from "./upstream.ts";

/** A config that cannot serve the tenants the database holds (e.g. a plan an API tenant uses was removed). */
export class SnapshotError extends Error {}

const none: readonly never[] = [];

/** A tenants row as raw values, in the order readSnapshotRows selects them. */
type TenantRow = [
  id: string,
  uid: string,
  name: string,
  plan: string,
  disabled: number,
  policies: string,
  upstreams: string,
  metadata: string,
  externalIds: string,
  credentials: string,
];

export interface SnapshotRows {
  readonly tenants: TenantRow[];
  readonly keys: KeyRow[];
}

/** An api_keys row as raw values, in the order readSnapshotRows selects them. */
type KeyRow = [
  id: string,
  uid: string,
  tenantId: string,
  hash: string,
  previousHash: string | null,
  graceUntil: number | null,
  limits: string,
  rules: string,
  quota: string | null,
  disabled: number,
  expiresAt: number | null,
];
const noOverrides: ReadonlyMap<string, string> = new Map();
const noMetadata: Readonly<Record<string, string>> = Object.freeze({});
/** What a tenant adds to its plan when it adds nothing (billFailures is the plan's alone). */
const nothingOwn: CompiledPlan = {
  rules: none,
  limits: none,
  quotas: none,
  concurrency: null,
  billFailures: false,
};
const noTargets: ReadonlyMap<string, UpstreamTarget> = new Map();

/**
 * Start-up cost grows with tenants and keys, so this reads rows as raw values (drizzle's row mapping
 * was most of the time at 10,000 keys), compiles each plan once, and lets tenants and keys that add
 * nothing of their own share the plan's arrays.
 */
export function buildSnapshot(
  config: Omit<GatewayConfig, "tenants">,
  db: Pick<Db, "select">,
  version: number,
  vault: CredentialValues = noCredentials,
): Snapshot {
  return compileSnapshot(config, readSnapshotRows(db), version, vault);
}

/**
 * The tenants and keys a snapshot is built from, as raw values: plain data, so that data-plane
 * threads (src/threads) build the very snapshot the main thread built.
 */
export function readSnapshotRows(db: Pick<Db, "select">): SnapshotRows {
  const tenantRows = db
    .select({
      id: tenants.id,
      uid: tenants.uid,
      name: tenants.name,
      plan: tenants.plan,
      disabled: tenants.disabled,
      policies: tenants.policies,
      upstreams: tenants.upstreams,
      metadata: tenants.metadata,
      externalIds: tenants.externalIds,
      credentials: tenants.credentials,
    })
    .from(tenants)
    .values() as TenantRow[];
  const keyRows = db
    .select({
      id: apiKeys.id,
      uid: apiKeys.uid,
      tenantId: apiKeys.tenantId,
      hash: apiKeys.hash,
      previousHash: apiKeys.previousHash,
      graceUntil: apiKeys.graceUntil,
      limits: apiKeys.limits,
      rules: apiKeys.rules,
      quota: apiKeys.quota,
      disabled: apiKeys.disabled,
      expiresAt: apiKeys.expiresAt,
    })
    .from(apiKeys)
    .values() as KeyRow[];
  return { tenants: tenantRows, keys: keyRows };
}

/** Compiles a snapshot from the config and the rows readSnapshotRows read. */
export function compileSnapshot(
  config: Omit<GatewayConfig, "tenants">,
  rows: SnapshotRows,
  version: number,
  vault: CredentialValues = noCredentials,
): Snapshot {
  const upstreams = new Map<string, UpstreamTarget>(
    Object.entries(config.upstreams).map(([name, d]) => [name, compileUpstream(name, d, vault)]),
  );

  const routes: CompiledRoute[] = config.routes.map((r, index) => {
    const pattern = parsePattern(r.match);
    return {
      index,
      match: r.match,
      pattern,
      upstream: r.upstream,
      cost: r.cost ?? 1,
      costFrom: compileCostFrom(r.costFrom, r.cost ?? 1),
      ...compileRouteTenancy(r, pattern),
    };
  });
  // Most specific first; sort is stable, so ties keep file order.
  routes.sort((a, b) => compareSpecificity(a.pattern, b.pattern));

  const plans = new Map<string, CompiledPlan>();
  for (const [name, p] of Object.entries(config.plans)) {
    plans.set(name, {
      rules: (p.rules ?? []).map((r, i) => compileRule(r, `plans.${name}.rules[${i}]`)),
      limits: (p.limits ?? []).map((l, i) => compileLimit(l, "plan", `plans.${name}.limits[${i}]`)),
      quotas: p.quota ? [compileQuota(p.quota, "plan", `plans.${name}.quota`)] : none,
      concurrency: p.concurrency ?? null,
      billFailures: p.billFailures ?? false,
    });
  }

  const tenantViews = new Map<string, TenantView>();
  for (const [
    id,
    uid,
    name,
    planName,
    disabled,
    policies,
    overridesJson,
    metadata,
    externalIds,
    credentialsJson,
  ] of rows.tenants) {
    const plan = plans.get(planName);
    if (!plan) {
      throw new SnapshotError(
        `tenant "${id}" uses plan "${planName}", which the config does not declare; ` +
          "declare the plan or move the tenant to another plan first",
      );
    }
    const own = policies === "{}" ? {} : (JSON.parse(policies) as TenantPolicies);
    const overrides =
      overridesJson === "{}"
        ? noOverrides
        : new Map(Object.entries(JSON.parse(overridesJson) as Record<string, string>));
    for (const [from, to] of overrides) {
      if (!upstreams.has(to)) {
        throw new SnapshotError(
          `tenant "${id}" routes "${from}" to upstream "${to}", which the config does not declare`,
        );
      }
    }
    const added: CompiledPlan =
      policies === "{}"
        ? nothingOwn
        : {
            rules: own.rules?.map((r, i) => compileRule(r, `tenants.${id}.rules[${i}]`)) ?? none,
            limits:
              own.limits?.map((l, i) => compileLimit(l, "tenant", `tenants.${id}.limits[${i}]`)) ?? none,
            quotas: own.quota ? [compileQuota(own.quota, "tenant", `tenants.${id}.quota`)] : none,
            concurrency: own.concurrency ?? null,
            billFailures: false,
          };
    const targets = credentialsJson === "{}" ? noTargets : tenantTargets(id, config, vault, credentialsJson);
    tenantViews.set(id, {
      id,
      uid,
      name,
      plan: planName,
      disabled: Boolean(disabled),
      rules: added.rules.length ? [...plan.rules, ...added.rules] : plan.rules,
      limits: added.limits.length ? [...plan.limits, ...added.limits] : plan.limits,
      quotas: added.quotas.length ? [...plan.quotas, ...added.quotas] : plan.quotas,
      concurrency: added.concurrency ?? plan.concurrency,
      billFailures: plan.billFailures,
      upstreams: overrides,
      externalIds: externalIds === "[]" ? none : (JSON.parse(externalIds) as string[]),
      metadata: metadata === "{}" ? noMetadata : (JSON.parse(metadata) as Record<string, string>),
      own: added,
      targets,
    });
  }

  const keysByHash = new Map<string, KeyView>();
  for (const [
    id,
    uid,
    tenantId,
    hash,
    previousHash,
    graceUntil,
    limits,
    rules,
    quota,
    disabled,
    expiresAt,
  ] of rows.keys) {
    const view: KeyView = {
      id,
      uid,
      tenantId,
      expiresAt,
      disabled: Boolean(disabled),
      graceUntil: null,
      limits:
        limits === "[]"
          ? none
          : (JSON.parse(limits) as LimitDecl[]).map((l, i) =>
              compileLimit(l, "key", `tenants.${tenantId}.keys[${id}].limits[${i}]`),
            ),
      rules:
        rules === "[]"
          ? none
          : (JSON.parse(rules) as RuleDecl[]).map((r, i) =>
              compileRule(r, `tenants.${tenantId}.keys[${id}].rules[${i}]`),
            ),
      // A key's own quota counts that key alone, whatever its `by` says (as its limits do).
      quotas:
        quota === null
          ? none
          : [
              compileQuota(
                { ...(JSON.parse(quota) as QuotaDecl), by: "key" },
                "key",
                `tenants.${tenantId}.keys[${id}].quota`,
              ),
            ],
    };
    keysByHash.set(hash, view);
    if (previousHash && graceUntil !== null) keysByHash.set(previousHash, { ...view, graceUntil });
  }

  return {
    version,
    routes,
    upstreams,
    tenants: tenantViews,
    keysByHash,
    plans,
    identity: compileIdentity(config),
    tenantsByName: tenantsByName(tenantViews),
  };
}

/** The upstreams a tenant reaches with credentials of its own, each compiled with its override. */
function tenantTargets(
  id: string,
  config: Pick<GatewayConfig, "upstreams">,
  vault: CredentialValues,
  json: string,
): Map<string, UpstreamTarget> {
  const targets = new Map<string, UpstreamTarget>();
  for (const [upstream, credential] of Object.entries(JSON.parse(json) as Record<string, string>)) {
    const problem = overrideProblem(config, upstream);
    if (problem) {
      throw new SnapshotError(
        `tenant "${id}" replaces the credential of upstream "${upstream}", but ${problem}`,
      );
    }
    targets.set(upstream, compileUpstream(upstream, config.upstreams[upstream]!, vault, credential));
  }
  return targets;
}
