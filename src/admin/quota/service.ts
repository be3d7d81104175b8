/**
 * Quota counts as operators see and correct them. Reads and changes go through the data plane's own
 * counters (QuotaCounters), so the next request sees a reset or credit, and the change is written
 * like any count: flushed as an absolute value that no earlier flush can overwrite.
 *
 * A tenant's routes address the counts its keys share (`by: tenant`); a key's routes address the
 * counts that key keeps alone (its own quota, and the tenant's `by: key` quotas). A key's GET also
 * shows the shared counts it is judged against.
 */
import type { Static } from "@sinclair/typebox";
import type { CompiledQuota, KeyView, TenantView } from "../../gateway/snapshot.ts";
import type { QuotaCounter, QuotaCounters } from "../../policies/limits/quota-counters.ts";
import { sourceLocator } from "../declared-source.ts";
import { iso } from "../fields.ts";
import { quotaItem } from "../policy/service.ts";
import { AdminProblem, badRequest, conflict, notFound } from "../problem.ts";
import { keyViewOf, tenantViewOf } from "../snapshot-views.ts";
import type { AdminStore } from "../store.ts";
import type { QuotaState } from "./model.ts";

type State = Static<typeof QuotaState>;

/**
 * Quota counts kept elsewhere as well (a cluster's Redis, shared by every node): read before they are
 * shown, and changed there before the node's own counters. Each answers false when they cannot be
 * reached, having changed nothing.
 */
export interface SharedQuotaCounts {
  read(
    tenant: TenantView,
    key: KeyView | null,
    counted: readonly { quota: CompiledQuota; counter: QuotaCounter }[],
  ): Promise<boolean>;
  change(
    tenant: TenantView,
    key: KeyView | null,
    changes: readonly { quota: CompiledQuota; counter: QuotaCounter; how: "set" | "credit"; units: number }[],
  ): Promise<boolean>;
}

/** The quotas one route addresses, each with the counter it is counted in now. */
interface Scope {
  tenant: TenantView;
  key: KeyView | null;
  /** Shown by GET. */
  shown: { quota: CompiledQuota; counter: QuotaCounter }[];
  /** Changed by reset and credit. */
  changeable: { quota: CompiledQuota; counter: QuotaCounter }[];
}

export class QuotaService {
  constructor(
    private readonly store: AdminStore,
    private readonly counters: QuotaCounters,
    private readonly shared?: SharedQuotaCounts,
  ) {}

  async ofTenant(id: string): Promise<State> {
    return this.state(await this.read(this.tenantScope(id)));
  }

  async ofKey(id: string): Promise<State> {
    return this.state(await this.read(this.keyScope(id)));
  }

  /** Sets used to 0 in the current period of the named quota, or of every one the route addresses. */
  async reset(
    target: "tenant" | "key",
    id: string,
    quota: string | undefined,
    actor: string,
  ): Promise<State> {
    const scope = await this.read(target === "tenant" ? this.tenantScope(id) : this.keyScope(id));
    const chosen = quota === undefined ? scope.changeable : [this.pick(scope, quota)];
    await this.apply(
      scope,
      target,
      id,
      "quota.reset",
      actor,
      chosen.map((c) => ({ ...c, used: 0, how: "set" as const, units: 0 })),
      {},
    );
    return this.state(scope);
  }

  /** Gives `units` back in the current period: used goes down by that much, never below 0. */
  async credit(
    target: "tenant" | "key",
    id: string,
    quota: string | undefined,
    units: number,
    actor: string,
  ): Promise<State> {
    const scope = await this.read(target === "tenant" ? this.tenantScope(id) : this.keyScope(id));
    const c = quota !== undefined ? this.pick(scope, quota) : this.only(scope);
    const change = { ...c, used: Math.max(0, c.counter.used - units), how: "credit" as const, units };
    await this.apply(scope, target, id, "quota.credit", actor, [change], { units });
    return this.state(scope);
  }

  /** The scope with the shared counts, when there are any, read into the node's counters. */
  private async read(scope: Scope): Promise<Scope> {
    if (this.shared && !(await this.shared.read(scope.tenant, scope.key, scope.shown))) {
      throw sharedUnavailable("nothing was changed");
    }
    return scope;
  }

  private async apply(
    scope: Scope,
    target: "tenant" | "key",
    id: string,
    action: string,
    actor: string,
    changes: {
      quota: CompiledQuota;
      counter: QuotaCounter;
      used: number;
      how: "set" | "credit";
      units: number;
    }[],
    extra: Record<string, unknown>,
  ): Promise<void> {
    if (changes.length === 0) return;
    const entry = (used: (c: (typeof changes)[number]) => number) =>
      changes.map((c) => ({ quota: c.quota.name, periodStart: iso(c.counter.periodStart), used: used(c) }));
    // The audit entry commits first: if the database refuses it, nothing has changed.
    this.store.database.db.transaction((tx) =>
      this.store.audit.record(tx, {
        actor,
        action,
        objectType: target,
        objectId: id,
        before: { quotas: entry((c) => c.counter.used) },
        after: { ...extra, quotas: entry((c) => c.used) },
      }),
    );
    if (this.shared) {
      // Made in the shared counts (a credit atomically, so no count another node adds meanwhile is
      // lost); the node's counters follow there.
      if (!(await this.shared.change(scope.tenant, scope.key, changes))) {
        throw sharedUnavailable(
          "the audit log records the attempt, but the counts did not change; repeat it",
        );
      }
    } else {
      for (const c of changes) this.counters.set(c.counter, c.used);
    }
    try {
      this.counters.flush();
    } catch {
      // The new counts are in force; the maintenance flush retries the write (and reports the fault).
    }
  }

  private tenantScope(id: string): Scope {
    const tenant = tenantViewOf(this.store.state.snapshot, id);
    const now = this.store.clock.now();
    const shared = tenant.quotas
      .filter((q) => q.by === "tenant")
      .map((quota) => ({ quota, counter: this.counters.counter(quota, tenant.uid, now) }));
    return { tenant, key: null, shown: shared, changeable: shared };
  }

  private keyScope(id: string): Scope {
    const { tenant, key } = keyViewOf(this.store.state.snapshot, id);
    const now = this.store.clock.now();
    const shown = [...tenant.quotas, ...key.quotas].map((quota) => ({
      quota,
      counter: this.counters.counter(quota, quota.by === "key" ? key.uid : tenant.uid, now),
    }));
    return { tenant, key, shown, changeable: shown.filter((c) => c.quota.by === "key") };
  }

  private pick(scope: Scope, name: string) {
    const found = scope.changeable.find((c) => c.quota.name === name);
    if (found) return found;
    const shared = scope.shown.find((c) => c.quota.name === name);
    if (shared && scope.key) {
      throw conflict(
        `Quota "${name}" counts all of tenant "${scope.tenant.id}"'s keys together; change it through ` +
          `POST /tenants/${scope.tenant.id}/quota/reset or /credit.`,
      );
    }
    throw notFound(`No quota named "${name}" is counted here; ${this.listed(scope)}.`);
  }

  private only(scope: Scope) {
    if (scope.changeable.length === 1) return scope.changeable[0]!;
    if (scope.changeable.length === 0) throw notFound(`No quota is counted here; ${this.listed(scope)}.`);
    throw badRequest(`Name the quota to credit: ${this.listed(scope)}.`);
  }

  private listed(scope: Scope): string {
    const names = scope.changeable.map((c) => c.quota.name);
    const who = scope.key ? `key "${scope.key.id}"` : `tenant "${scope.tenant.id}"`;
    return names.length ? `${who} has ${names.join(", ")}` : `${who} has no quota of its own to change`;
  }

  private state(scope: Scope): State {
    const locate = sourceLocator(this.store);
    return {
      tenant: scope.tenant.id,
      key: scope.key?.id ?? null,
      quotas: scope.shown.map(({ quota, counter }) => ({
        ...quotaItem(quota, locate),
        used: counter.used,
        remaining: Math.max(0, quota.limit - counter.used),
        periodStart: iso(counter.periodStart),
        resetsAt: iso(counter.periodEnd),
      })),
    };
  }
}

const sharedUnavailable = (what: string) =>
  new AdminProblem(
    503,
    "store_unavailable",
    `The quota counts all nodes share (Redis) cannot be reached right now: ${what}. Retry shortly.`,
    {},
    { "retry-after": "5" },
  );
