/**
 * RateLimit-Policy and RateLimit fields of draft-ietf-httpapi-ratelimit-headers (drafts 08–11):
 * structured-field lists whose items are the policy name as an sf-string with integer parameters,
 * `q` (quota units) and `w` (window seconds) in RateLimit-Policy, `r` (remaining units) and `t`
 * (seconds until the counted units have all left the window, or until the quota period resets) in
 * RateLimit.
 */

import { Refusal, type RefusalCode } from "../../gateway/refusal.ts";
import type { KeyView, TenantView } from "../../gateway/snapshot.ts";

/** A quota's current period, as its counter holds it. */
interface PeriodBounds {
  readonly periodStart: number;
  readonly periodEnd: number;
}

const NEEDS_ESCAPE = /["\\]|[^\x20-\x7e]/;

/** An sf-string: quotes and backslashes escaped; characters sf-strings cannot carry become "?". */
export function sfString(s: string): string {
  if (!NEEDS_ESCAPE.test(s)) return `"${s}"`;
  return `"${s.replace(/[^\x20-\x7e]/g, "?").replace(/["\\]/g, "\\$&")}"`;
}

/** Whole seconds, rounded up so that a client waiting that long is never early. */
export const ceilSeconds = (ms: number) => Math.ceil(ms / 1000);

/**
 * A limits refusal: its RateLimit fields (`fields`, null when the request has no counters) both on
 * the answer and among the refusal's headers, and Retry-After when the wait is known.
 */
export function limitsRefusal(
  code: RefusalCode,
  detail: string,
  retryMs: number | null,
  fields: readonly [policy: string, state: string] | null,
  responseHeaders: Map<string, string>,
): Refusal {
  const extra: Record<string, string> = {};
  if (fields !== null && fields[0] !== "") {
    responseHeaders.set("ratelimit-policy", fields[0]);
    responseHeaders.set("ratelimit", fields[1]);
    extra["RateLimit-Policy"] = fields[0];
    extra.RateLimit = fields[1];
  }
  if (retryMs !== null) extra["Retry-After"] = String(ceilSeconds(retryMs));
  return new Refusal(code, detail, extra);
}

/**
 * What the fields of one tenant and key share across requests: the whole RateLimit-Policy value and,
 * per item, the start of its RateLimit item (`, "name";r=`). Quota items advertise the current
 * period's length, so a shape holds only within [from, until). Shadow limits and quotas are not in
 * force, so they are not advertised: their prefix is null.
 */
export interface FieldShape {
  readonly tenant: TenantView;
  /** "" when nothing is advertised. */
  readonly policy: string;
  /** Per limit, then per quota (the tenant's, then the key's). */
  readonly prefixes: readonly (string | null)[];
  readonly from: number;
  readonly until: number;
}

/** `periods` are the quota counters, the tenant's then the key's, rolled to the current period. */
export function fieldShape(tenant: TenantView, key: KeyView, periods: readonly PeriodBounds[]): FieldShape {
  const items: string[] = [];
  const prefixes: (string | null)[] = [];
  let from = Number.NEGATIVE_INFINITY;
  let until = Number.POSITIVE_INFINITY;
  for (const l of [...tenant.limits, ...key.limits]) {
    if (l.shadow) {
      prefixes.push(null);
      continue;
    }
    prefixes.push(`${items.length === 0 ? "" : ", "}${sfString(l.name)};r=`);
    items.push(`${sfString(l.name)};q=${l.limit};w=${Math.max(1, ceilSeconds(l.windowMs))}`);
  }
  [...tenant.quotas, ...key.quotas].forEach((q, j) => {
    const p = periods[j]!;
    from = Math.max(from, p.periodStart);
    until = Math.min(until, p.periodEnd);
    if (q.shadow) {
      prefixes.push(null);
      return;
    }
    prefixes.push(`${items.length === 0 ? "" : ", "}${sfString(q.name)};r=`);
    items.push(`${sfString(q.name)};q=${q.limit};w=${Math.round((p.periodEnd - p.periodStart) / 1000)}`);
  });
  return { tenant, policy: items.join(", "), prefixes, from, until };
}

/** "1s", "2m", "500ms": how a window reads in a refusal's detail. */
export { formatDuration as formatWindow } from "../../config/units.ts";
