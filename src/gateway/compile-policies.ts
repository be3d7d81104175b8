/** Turns declared limits, quotas and rules into the compiled forms the data plane reads. */

import type { CostFromDecl, LimitDecl, QuotaDecl, RuleDecl } from "../config/schema.ts";
import { formatDuration, parseDuration, parseSize } from "../config/units.ts";
import { foldedPattern, type PathPattern, parsePattern } from "./pattern.ts";
import { compilePredicates } from "./request-predicates.ts";
import type { CompiledLimit, CompiledQuota, CompiledRule, CostSource, LimitOrigin } from "./snapshot.ts";

/** The name a limit shows in RateLimit headers: its own, or "10-per-1s" ("-by-key" when per key). */
export function limitName(d: LimitDecl): string {
  return (
    d.name ?? `${d.limit}-per-${formatDuration(parseDuration(d.window))}${d.by === "key" ? "-by-key" : ""}`
  );
}

export function quotaName(d: QuotaDecl): string {
  return d.name ?? `quota-${d.period}${d.by === "key" ? "-by-key" : ""}`;
}

/**
 * `declaredAt` says where the declaration lives, as a config path (`plans.free.limits[0]`,
 * `tenants.acme.keys[acme-dev].rules[1]`), for explanations; it is built once per snapshot.
 */
export function compileLimit(d: LimitDecl, origin: LimitOrigin, declaredAt: string): CompiledLimit {
  const name = limitName(d);
  return {
    name,
    declaredAt,
    counter: `${origin}:${name}`,
    limit: d.limit,
    windowMs: parseDuration(d.window),
    by: d.by ?? "tenant",
    shadow: d.mode === "shadow",
  };
}

export function compileQuota(d: QuotaDecl, origin: LimitOrigin, declaredAt: string): CompiledQuota {
  const name = quotaName(d);
  return {
    name,
    declaredAt,
    counter: `${origin}:${name}`,
    limit: d.limit,
    period: d.period,
    anchor: d.anchor ?? 1,
    timezone: d.timezone ?? "UTC",
    by: d.by ?? "tenant",
    shadow: d.mode === "shadow",
  };
}

/** A deny's literals are case-folded: it matches the request's lenient segments (see policies/rules). */
export function compileRule(d: RuleDecl, declaredAt: string): CompiledRule {
  const scope = d.scope ?? null;
  const predicates = compilePredicates(d.headers, d.query);
  const shadow = d.mode === "shadow";
  return "allow" in d
    ? { effect: "allow", pattern: parsePattern(d.allow), predicates, shadow, declaredAt, scope }
    : {
        effect: "deny",
        pattern: withHeadForGet(foldedPattern(parsePattern(d.deny, { lenient: true }))),
        predicates,
        shadow,
        declaredAt,
        scope,
      };
}

/** Bodies measured when a route says nothing: enough for any usage report, small enough to hold. */
export const DEFAULT_MEASURE_BYTES = 1024 * 1024;

/** Where a route reads its post-paid cost; `cost` is the route's, the default fallback. */
export function compileCostFrom(d: CostFromDecl | undefined, cost: number): CostSource | null {
  if (d === undefined) return null;
  const fallback = d.fallback ?? cost;
  if ("header" in d) return { kind: "header", name: d.header.toLowerCase(), fallback };
  return {
    kind: "json",
    path: d.json.split("."),
    maxBytes: d.maxBytes ? parseSize(d.maxBytes) : DEFAULT_MEASURE_BYTES,
    fallback,
  };
}

/**
 * A deny that names GET denies HEAD too: most servers and frameworks (Express, Flask, Rails, Go's
 * net/http, Spring) answer HEAD by running the GET handler, so a HEAD would reach what the deny
 * keeps out, side effects included. An allow is not widened: being stricter is safe.
 */
function withHeadForGet(p: PathPattern): PathPattern {
  if (p.methods === null || !p.methods.has("GET") || p.methods.has("HEAD")) return p;
  return { ...p, methods: new Set([...p.methods, "HEAD"]) };
}
