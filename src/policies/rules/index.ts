/** Path rules: default deny; a request passes when some allow matches and no deny does. */

import { matches } from "../../gateway/pattern.ts";
import { Refusal } from "../../gateway/refusal.ts";
import type { Policy, RequestContext } from "../policy.ts";

const forbidden = () => new Refusal("forbidden", "This key may not use this method and path.");

export function createRulesPolicy(): Policy {
  return {
    name: "rules",
    check(ctx: RequestContext) {
      // The key's rules join the tenant's (its plan's and its own): any deny among them wins.
      let allowed = false;
      for (const rules of [ctx.tenant?.rules ?? [], ctx.key?.rules ?? []]) {
        for (const rule of rules) {
          if (!matches(rule.pattern, ctx.method, ctx.segments)) continue;
          if (rule.effect === "deny") return forbidden();
          allowed = true;
        }
      }
      return allowed ? undefined : forbidden();
    },
  };
}
