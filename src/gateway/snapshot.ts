/**
 * The immutable, compiled view of the configuration that the data plane reads. A reload builds a
 * new snapshot and swaps one reference; nothing here is mutated after it is built.
 */
import type { CompiledIdentity } from "../identity/compile.ts";
import type { PathPattern } from "./pattern.ts";
import type { RequestPredicate } from "./request-predicates.ts";
import type { UpstreamTarget } from "./upstream.ts";

/** Where a limit or quota is declared: on the tenant's plan, on the tenant, or on the key. */
export type LimitOrigin = "plan" | "tenant" | "key";

export interface CompiledLimit {
  /** Name shown in RateLimit headers, unique within a tenant's effective policy. */
  readonly name: string;
  /** Where it is declared, as a config path: `plans.free.limits[0]`, `tenants.acme.keys[acme-dev].limits[1]`. */
  readonly declaredAt: string;
  /**
   * `<origin>:<name>`, built once here: with the counted tenant's or key's uid it keys the counter, so
   * two declarations never share one, while a changed value keeps counting in the same one.
   */
  readonly counter: string;
  readonly limit: number;
  readonly windowMs: number;
  readonly by: "tenant" | "key";
  /** Counted, never refusing: see policies/limits. */
  readonly shadow: boolean;
}

export interface CompiledQuota {
  readonly name: string;
  /** Where it is declared, as for limits. */
  readonly declaredAt: string;
  /** `<origin>:<name>`, as for limits. */
  readonly counter: string;
  readonly limit: number;
  readonly period: "hour" | "day" | "month";
  /** Day of the month a monthly period starts on (1 when not a billing cycle). */
  readonly anchor: number;
  readonly timezone: string;
  readonly by: "tenant" | "key";
  readonly shadow: boolean;
}

export interface CompiledRule {
  readonly effect: "allow" | "deny";
  readonly pattern: PathPattern;
  /** Header and query tests that must hold too; empty for most rules. */
  readonly predicates: readonly RequestPredicate[];
  /** A shadow deny records what it would refuse and refuses nothing (allows are never shadow). */
  readonly shadow: boolean;
  /** Where it is declared, as for limits. */
  readonly declaredAt: string;
  /** The rule applies only to requests whose token carries this scope; null for every request. */
  readonly scope: string | null;
}

/** Where a route reads its post-paid cost (see gateway/measure-cost.ts). */
export type CostSource =
  | { readonly kind: "header"; readonly name: string; readonly fallback: number }
  | {
      readonly kind: "json";
      readonly path: readonly string[];
      readonly maxBytes: number;
      readonly fallback: number;
    };

export interface CompiledRoute {
  /** Position in the file, for ties and for naming the route in usage rows. */
  readonly index: number;
  readonly match: string;
  readonly pattern: PathPattern;
  readonly upstream: string;
  /** Cost units counted at admission; with `costFrom`, replaced by the measured cost at the end. */
  readonly cost: number;
  readonly costFrom: CostSource | null;
  /** Names of the credential sources this route accepts; null for all of `identity:`. */
  readonly identity: ReadonlySet<string> | null;
  /** Where requests name their tenant besides the path: each must name the authenticated one. */
  readonly tenantIn: { readonly query: string | null; readonly header: string | null } | null;
  /** Index of the pattern's `:tenant` segment, or -1. */
  readonly tenantSegment: number;
}

/** What a plan gives, compiled once per snapshot and shared by its tenants. */
export interface CompiledPlan {
  readonly rules: readonly CompiledRule[];
  readonly limits: readonly CompiledLimit[];
  readonly quotas: readonly CompiledQuota[];
  readonly concurrency: number | null;
  /** Whether failed requests are billed (by default they cost nothing against quotas). */
  readonly billFailures: boolean;
}

export interface TenantView {
  readonly id: string;
  /** This incarnation of the tenant (see `newUid` in db/schema.ts); its counters are keyed by it. */
  readonly uid: string;
  readonly name: string;
  readonly plan: string;
  readonly disabled: boolean;
  /** Plan rules followed by the tenant's own. */
  readonly rules: readonly CompiledRule[];
  /** Plan limits followed by the tenant's own; key limits live on the key. */
  readonly limits: readonly CompiledLimit[];
  readonly quotas: readonly CompiledQuota[];
  readonly concurrency: number | null;
  /** From the plan: whether quotas and usage rows count requests that failed upstream. */
  readonly billFailures: boolean;
  /** Upstream name → replacement for this tenant. */
  readonly upstreams: ReadonlyMap<string, string>;
  /** Other names a token may give the tenant by (see identity/). */
  readonly externalIds: readonly string[];
  readonly metadata: Readonly<Record<string, string>>;
  /** What the tenant adds to its plan, to judge it by another plan a token picks. */
  readonly own: CompiledPlan;
  /** Upstream name → that upstream compiled with this tenant's own credential (its `credentials:`). */
  readonly targets: ReadonlyMap<string, UpstreamTarget>;
}

export interface KeyView {
  readonly id: string;
  /** This incarnation of the key; its counters are keyed by it. */
  readonly uid: string;
  readonly tenantId: string;
  /** Epoch ms after which the key fails, or null. */
  readonly expiresAt: number | null;
  readonly disabled: boolean;
  /** When set, this credential is a rotated-out secret that works until this epoch ms. */
  readonly graceUntil: number | null;
  /** Added to the tenant's: limits always count per key, quotas by their own `by`. */
  readonly limits: readonly CompiledLimit[];
  readonly rules: readonly CompiledRule[];
  readonly quotas: readonly CompiledQuota[];
}

export interface Snapshot {
  /** Increases with every reload; reported by the control API. */
  readonly version: number;
  readonly routes: readonly CompiledRoute[];
  readonly upstreams: ReadonlyMap<string, UpstreamTarget>;
  readonly tenants: ReadonlyMap<string, TenantView>;
  /** "sha256:<hex>" → key. A rotated key appears under both its hashes during the grace period. */
  readonly keysByHash: ReadonlyMap<string, KeyView>;
  readonly plans: ReadonlyMap<string, CompiledPlan>;
  /** Where the tenant of a request comes from. */
  readonly identity: CompiledIdentity;
  /** Tenant id and every external id → tenant. */
  readonly tenantsByName: ReadonlyMap<string, TenantView>;
}
