/** Path rules: default deny; a request passes when some allow matches and no deny does. */

import { matches } from "../../gateway/pattern.ts";
import { Refusal } from "../../gateway/refusal.ts";
import type { Policy, RequestContext } from "../policy.ts";

export function createRulesPolicy(): Policy {
  return {
    name: "rules",
    check(ctx: RequestContext) {
      let allowed = false;
      for (const rule of ctx.tenant?.rules ?? []) {
        if (!matches(rule.pattern, ctx.method, ctx.segments)) continue;
        if (rule.effect === "deny")
          return new Refusal("forbidden", "This key may not use this method and path.");
        allowed = true;
      }
      return allowed ? undefined : new Refusal("forbidden", "This key may not use this method and path.");
    },
  };
}
