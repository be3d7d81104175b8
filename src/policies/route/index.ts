/** Routing: the most specific route for the canonical path, and the tenant's upstream (and credential) for it. */

import { matches } from "../../gateway/pattern.ts";
import { Refusal } from "../../gateway/refusal.ts";
import type { Policy, RequestContext } from "../policy.ts";

export function createRoutePolicy(): Policy {
  return {
    name: "route",
    check(ctx: RequestContext) {
      const route = ctx.snapshot.routes.find((r) => matches(r.pattern, ctx.method, ctx.segments));
      if (!route) return new Refusal("not_found", "No route matches this method and path.");
      const name = ctx.tenant?.upstreams.get(route.upstream) ?? route.upstream;
      // A tenant with a credential of its own for this upstream has its own compiled copy of it.
      const upstream = ctx.tenant?.targets.get(name) ?? ctx.snapshot.upstreams.get(name);
      if (!upstream) return new Refusal("not_found", "No route matches this method and path.");
      ctx.route = route;
      ctx.upstream = upstream;
      ctx.cost = route.cost;
      return undefined;
    },
  };
}
