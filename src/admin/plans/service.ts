/** Plans as the config in force declares them, with where; plans live only in the file. */
import type { Static } from "@sinclair/typebox";
import { count } from "drizzle-orm";
import { tenants } from "../../db/schema.ts";
import { sourceLocator } from "../declared-source.ts";
import type { AdminStore } from "../store.ts";
import type { PlanList } from "./model.ts";

export class PlanService {
  constructor(private readonly store: AdminStore) {}

  list(): Static<typeof PlanList> {
    const locate = sourceLocator(this.store);
    const at = (declaredAt: string) => ({ declaredAt, source: locate(declaredAt) });
    const onPlan = new Map(
      this.store.database.db
        .select({ plan: tenants.plan, n: count() })
        .from(tenants)
        .groupBy(tenants.plan)
        .all()
        .map((r) => [r.plan, r.n]),
    );
    const items = Object.entries(this.store.state.config.config.plans).map(([name, p]) => ({
      name,
      ...at(`plans.${name}`),
      limits: (p.limits ?? []).map((l, i) => ({ ...l, ...at(`plans.${name}.limits[${i}]`) })),
      quota: p.quota ? { ...p.quota, ...at(`plans.${name}.quota`) } : null,
      rules: (p.rules ?? []).map((r, i) => ({
        ...("allow" in r
          ? { effect: "allow" as const, pattern: r.allow }
          : { effect: "deny" as const, pattern: r.deny }),
        ...at(`plans.${name}.rules[${i}]`),
      })),
      concurrency: p.concurrency ?? null,
      tenants: onPlan.get(name) ?? 0,
    }));
    return { items };
  }
}
