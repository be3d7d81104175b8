/**
 * What a request finally costs, decided once when it has ended, for the limits policy's settlement,
 * the usage row and nothing else:
 * - `cost`, what rate limits count: the route's cost, or for a route with `costFrom` the cost read
 *   from the response when it is higher (missing or malformed: the route's fallback). The route's
 *   cost is what admission counted, and rate limits never give units back, so it is the least.
 * - `billed`, what quotas and the usage row count: `cost`, or 0 for a failure (the gateway's own 502
 *   or 504, an upstream 5xx, a body that broke off) unless the tenant's plan has `billFailures`.
 * A refused request costs nothing anywhere.
 */
import type { RequestContext } from "../policies/policy.ts";

export interface FinalCost {
  cost: number;
  billed: number;
}

export function finalCost(
  ctx: Pick<RequestContext, "cost" | "route" | "tenant">,
  ended: { status: number; outcome: string; measured: number | undefined },
  into: FinalCost,
): void {
  if (ended.outcome.startsWith("rejected:")) {
    into.cost = 0;
    into.billed = 0;
    return;
  }
  const admitted = ctx.cost > 0 ? Math.ceil(ctx.cost) : 0;
  const source = ctx.route?.costFrom ?? null;
  const cost = source === null ? admitted : Math.max(admitted, ended.measured ?? source.fallback);
  const failed = ended.outcome === "upstream_error" || ended.status >= 500;
  into.cost = cost;
  into.billed = failed && ctx.tenant?.billFailures !== true ? 0 : cost;
}
