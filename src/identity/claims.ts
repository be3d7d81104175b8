/** Reading claims out of a verified token: nested paths, names, scopes and the subject's key id. */

/** The value at a dotted path (`org.id`); undefined when any step is missing or not an object. */
export function claimAt(claims: Record<string, unknown>, path: readonly string[]): unknown {
  let v: unknown = claims;
  for (const step of path) {
    if (typeof v !== "object" || v === null || Array.isArray(v) || !Object.hasOwn(v, step)) return undefined;
    v = (v as Record<string, unknown>)[step];
  }
  return v;
}

/** A claim that names something (a tenant, a subject, a plan): a string, or a whole number as text. */
export function nameClaim(v: unknown): string | null {
  if (typeof v === "string") return v.length > 0 && v.length <= 1024 ? v : null;
  if (typeof v === "number" && Number.isSafeInteger(v)) return String(v);
  return null;
}

export const MAX_SCOPES = 64;
const scopeToken = /^[!#-[\]-~]{1,128}$/;

/** OAuth's space-separated `scope`, or a list (`scp`, `permissions`); malformed entries are dropped. */
export function scopesOf(v: unknown): Set<string> {
  const list = typeof v === "string" ? v.split(" ") : Array.isArray(v) ? v : [];
  const out = new Set<string>();
  for (const s of list) {
    if (out.size >= MAX_SCOPES) break;
    if (typeof s === "string" && scopeToken.test(s)) out.add(s);
  }
  return out;
}

const plainSubject = /^[!-~]{1,128}$/;

/**
 * How a subject appears as a key id (`jwt:<source>:<subject>`) in usage rows, metrics and the
 * X-Gatehouse-Key-Id header: as it is when it is short visible ASCII, else a hash of it, so an id
 * is bounded and always a valid header value. Never anything of the token itself.
 */
export function subjectKeyId(source: string, subject: string): string {
  const shown = plainSubject.test(subject)
    ? subject
    : `sha256:${new Bun.CryptoHasher("sha256").update(subject).digest("hex").slice(0, 32)}`;
  return `jwt:${source}:${shown}`;
}

/** The counters' identity of a subject within a tenant: stable across requests and restarts. */
export function subjectUid(source: string, tenantUid: string, subject: string): string {
  return `jwt-${new Bun.CryptoHasher("sha256").update(`${source}\0${tenantUid}\0${subject}`).digest("hex").slice(0, 24)}`;
}
