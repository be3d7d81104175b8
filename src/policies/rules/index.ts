/**
 * Path rules: default deny; a request passes when some allow matches and no deny does.
 *
 * The canonical path is one spelling, but an upstream may read others as the same path: a
 * case-insensitive server (IIS, Windows file servers, Spring or Express set to ignore case) serves
 * `/v1/ADMIN/x` as `/v1/admin/x`, and one that decodes before routing serves `/v1/items%3Apurge` as
 * `/v1/items:purge`. So denies match the lenient segments (percent-decoded, case-folded) with
 * case-folded literals, and no spelling dodges them. Allows match the canonical segments exactly:
 * that is stricter than such an upstream, which can only refuse a request it would have served,
 * never let one through. Header and query predicates follow the same principle
 * (gateway/request-predicates.ts): a deny matches any reading, an allow only every reading.
 *
 * A deny in shadow mode refuses nothing: a request the enforced rules let through and it matches is
 * recorded as one it would have refused (`forbidden`). Allows cannot be shadows: an allow can only
 * admit, so a shadow allow would never record anything.
 */

import { matches } from "../../gateway/pattern.ts";
import { Refusal } from "../../gateway/refusal.ts";
import { predicatesHold } from "../../gateway/request-predicates.ts";
import type { CompiledRule } from "../../gateway/snapshot.ts";
import { type Policy, type RequestContext, recordWouldRefuse } from "../policy.ts";

const forbidden = () => new Refusal("forbidden", "This key may not use this method and path.");

/**
 * Whether `rule` matches the request: a deny against its lenient readings (path and predicates), an
 * allow exactly. A rule with a scope applies only to requests whose token carries that scope (API
 * keys carry none).
 */
export function ruleMatches(
  rule: CompiledRule,
  ctx: Pick<RequestContext, "method" | "segments" | "lenientSegments" | "headers" | "query" | "identity">,
) {
  if (rule.scope !== null && !ctx.identity?.scopes?.has(rule.scope)) return false;
  const deny = rule.effect === "deny";
  return (
    matches(rule.pattern, ctx.method, deny ? ctx.lenientSegments : ctx.segments) &&
    (rule.predicates.length === 0 || predicatesHold(rule.predicates, deny, ctx.headers, ctx.query))
  );
}

export function createRulesPolicy(): Policy {
  return {
    name: "rules",
    check(ctx: RequestContext) {
      // The key's rules join the tenant's (its plan's and its own): any deny among them wins.
      let allowed = false;
      let shadowDenied = false;
      for (const rules of [ctx.tenant?.rules ?? [], ctx.key?.rules ?? []]) {
        for (const rule of rules) {
          if (!ruleMatches(rule, ctx)) continue;
          // A shadow allow (refused by validation) never admits.
          if (rule.effect === "allow") allowed ||= !rule.shadow;
          else if (rule.shadow) shadowDenied = true;
          else return forbidden();
        }
      }
      if (!allowed) return forbidden();
      if (shadowDenied) recordWouldRefuse(ctx, "forbidden");
      return undefined;
    },
  };
}
