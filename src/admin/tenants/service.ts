/** Tenants through the control API. Knows nothing of HTTP: takes plain bodies, throws AdminProblem. */

import type { Static } from "@sinclair/typebox";
import { asc, count, eq, gt, inArray, max } from "drizzle-orm";
import type { TenantDecl } from "../../config/schema.ts";
import { keyDecl, type TenantPolicies, tenantDecl } from "../../db/declarations.ts";
import { apiKeys, tenants } from "../../db/schema.ts";
import { iso, isoOrNull } from "../fields.ts";
import { pageOf } from "../pagination.ts";
import { conflict, notFound } from "../problem.ts";
import { type AdminStore, assertApiOwned, checkTenant, commit } from "../store.ts";
import type { CreateTenantBody, PatchTenantBody, TenantView } from "./model.ts";

type Row = typeof tenants.$inferSelect;
type KeyStats = { keys: number; lastUsedAt: number | null };
export type Tenant = Static<typeof TenantView>;

export class TenantService {
  constructor(private readonly store: AdminStore) {}

  private get db() {
    return this.store.database.db;
  }

  list(limit: number, after: string | undefined) {
    const rows = this.db
      .select()
      .from(tenants)
      .where(after === undefined ? undefined : gt(tenants.id, after))
      .orderBy(asc(tenants.id))
      .limit(limit + 1)
      .all();
    const stats = this.keyStats(rows.slice(0, limit).map((r) => r.id));
    return pageOf(
      rows,
      limit,
      (r) => toView(r, stats.get(r.id)),
      (r) => r.id,
    );
  }

  get(id: string): Tenant {
    const row = this.row(id);
    return toView(row, this.keyStats([id]).get(id));
  }

  async create(body: Static<typeof CreateTenantBody>, actor: string): Promise<Tenant> {
    const { id, ...fields } = body;
    const decl: TenantDecl = { ...fields };
    checkTenant(this.store, id, decl);
    const now = this.store.clock.now();
    await commit(this.store, (tx) => {
      if (tx.select({ id: tenants.id }).from(tenants).where(eq(tenants.id, id)).get()) {
        throw conflict(`A tenant with id "${id}" already exists.`);
      }
      const row = tx
        .insert(tenants)
        .values({ id, ...columns(decl, id), source: "api", sourceRef: null, createdAt: now, updatedAt: now })
        .returning()
        .get();
      this.store.audit.record(tx, {
        actor,
        action: "tenant.create",
        objectType: "tenant",
        objectId: id,
        after: toView(row),
      });
    });
    return this.get(id);
  }

  async update(id: string, body: Static<typeof PatchTenantBody>, actor: string): Promise<Tenant> {
    const before = this.row(id);
    assertApiOwned(before, `Tenant "${id}"`, this.store.state.config.file);
    const current = tenantDecl(before);
    const decl: TenantDecl = { ...current };
    for (const [k, v] of Object.entries(body)) {
      // null clears an optional policy (quota, concurrency) back to the plan's.
      (decl as Record<string, unknown>)[k] = v === null ? undefined : v;
    }
    // With its keys: a new tenant limit must not take a name one of its keys' limits has.
    const keys = this.db.select().from(apiKeys).where(eq(apiKeys.tenantId, id)).all();
    checkTenant(this.store, id, { ...decl, keys: keys.map(keyDecl) });
    await commit(this.store, (tx) => {
      const row = tx
        .update(tenants)
        .set({ ...columns(decl, id), updatedAt: this.store.clock.now() })
        .where(eq(tenants.id, id))
        .returning()
        .get();
      this.store.audit.record(tx, {
        actor,
        action: action(before.disabled, row.disabled),
        objectType: "tenant",
        objectId: id,
        before: toView(before),
        after: toView(row),
      });
    });
    return this.get(id);
  }

  /** Deletes the tenant and its keys; requests with those keys fail from the next one on. */
  async remove(id: string, actor: string): Promise<void> {
    const before = this.row(id);
    assertApiOwned(before, `Tenant "${id}"`, this.store.state.config.file);
    await commit(this.store, (tx) => {
      const keys = tx.select({ id: apiKeys.id }).from(apiKeys).where(eq(apiKeys.tenantId, id)).all();
      tx.delete(tenants).where(eq(tenants.id, id)).run();
      this.store.audit.record(tx, {
        actor,
        action: "tenant.delete",
        objectType: "tenant",
        objectId: id,
        before: { ...toView(before), keys: keys.map((k) => k.id) },
      });
    });
  }

  private row(id: string): Row {
    const row = this.db.select().from(tenants).where(eq(tenants.id, id)).get();
    if (!row) throw notFound(`No tenant with id "${id}".`);
    return row;
  }

  private keyStats(ids: string[]): Map<string, KeyStats> {
    if (ids.length === 0) return new Map();
    const rows = this.db
      .select({ tenantId: apiKeys.tenantId, keys: count(), lastUsedAt: max(apiKeys.lastUsedAt) })
      .from(apiKeys)
      .where(inArray(apiKeys.tenantId, ids))
      .groupBy(apiKeys.tenantId)
      .all();
    return new Map(rows.map((r) => [r.tenantId, { keys: r.keys, lastUsedAt: r.lastUsedAt ?? null }]));
  }
}

const action = (was: boolean, is: boolean) =>
  was === is ? "tenant.update" : is ? "tenant.disable" : "tenant.enable";

function columns(d: TenantDecl, id: string) {
  const policies: TenantPolicies = {
    limits: d.limits,
    rules: d.rules,
    quota: d.quota,
    concurrency: d.concurrency,
  };
  return {
    name: d.name ?? id,
    plan: d.plan,
    metadata: JSON.stringify(d.metadata ?? {}),
    externalIds: JSON.stringify(d.externalIds ?? []),
    upstreams: JSON.stringify(d.upstreams ?? {}),
    credentials: JSON.stringify(d.credentials ?? {}),
    policies: JSON.stringify(policies),
    disabled: d.disabled ?? false,
  };
}

export function toView(row: Row, stats: KeyStats = { keys: 0, lastUsedAt: null }): Tenant {
  const own = JSON.parse(row.policies) as TenantPolicies;
  return {
    id: row.id,
    name: row.name,
    plan: row.plan,
    metadata: JSON.parse(row.metadata) as Record<string, string>,
    externalIds: JSON.parse(row.externalIds) as string[],
    upstreams: JSON.parse(row.upstreams) as Record<string, string>,
    credentials: JSON.parse(row.credentials) as Record<string, string>,
    limits: own.limits ?? [],
    rules: own.rules ?? [],
    quota: own.quota ?? null,
    concurrency: own.concurrency ?? null,
    disabled: row.disabled,
    source: row.source,
    sourceRef: row.sourceRef,
    createdAt: iso(row.createdAt),
    updatedAt: iso(row.updatedAt),
    keys: stats.keys,
    lastUsedAt: isoOrNull(stats.lastUsedAt),
  };
}
