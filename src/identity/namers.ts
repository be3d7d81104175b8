/**
 * Sources that name a tenant without proving it: a Host pattern (`{tenant}.api.example.com`), a path
 * prefix (`/t/{tenant}`) and a header. What they name must agree with the tenant a credential proves
 * (see agree.ts); alone they authenticate nothing.
 *
 * The path prefix is read from the canonical path and removed from it, never from the raw target:
 * stripping first and normalizing after would let `/t/acme/../../admin` become `/admin` unjudged.
 */
import type { CanonicalResult } from "../gateway/canonical-path.ts";
import { Refusal } from "../gateway/refusal.ts";

export type Namer =
  | { kind: "subdomain"; labels: readonly (string | null)[] }
  | { kind: "pathPrefix"; segments: readonly (string | null)[] }
  | { kind: "header"; name: string };

/** A tenant a request names, and where. Host names compare without case, as DNS does. */
export interface NamedTenant {
  readonly source: "subdomain" | "pathPrefix" | "header";
  readonly value: string;
}

const TENANT = "{tenant}";
const dnsLabel = /^[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?$/;
const unreserved = /^[A-Za-z0-9._~-]+$/;

/** `{tenant}.api.example.com` → labels with null where the tenant goes, or why it cannot be one. */
export function parseHostPattern(
  text: string,
): { labels: (string | null)[]; error?: undefined } | { error: string } {
  const labels = text.toLowerCase().split(".");
  const slots = labels.filter((l) => l === TENANT).length;
  if (slots !== 1) return { error: "the pattern must hold {tenant} exactly once, as a whole label" };
  for (const l of labels) {
    if (l !== TENANT && !dnsLabel.test(l)) {
      return {
        error:
          l === ""
            ? "the pattern has an empty label (a leading, trailing or doubled dot)"
            : "each label other than {tenant} must be letters, digits, '-' or '_' (no port, scheme or path)",
      };
    }
  }
  return { labels: labels.map((l) => (l === TENANT ? null : l)) };
}

/** `/t/{tenant}` → segments with null where the tenant goes, or why it cannot be a prefix. */
export function parsePathPrefix(
  text: string,
): { segments: (string | null)[]; error?: undefined } | { error: string } {
  if (!text.startsWith("/") || text.endsWith("/") || text.includes("//")) {
    return { error: "the prefix must start with / and have no empty segment or trailing /" };
  }
  const parts = text.slice(1).split("/");
  if (parts.filter((p) => p === TENANT).length !== 1) {
    return { error: "the prefix must hold {tenant} exactly once, as a whole segment" };
  }
  for (const p of parts) {
    if (p !== TENANT && (!unreserved.test(p) || p === "." || p === "..")) {
      return { error: "each segment other than {tenant} must be letters, digits, '-', '.', '_' or '~'" };
    }
  }
  return { segments: parts.map((p) => (p === TENANT ? null : p)) };
}

/** The canonical path with any tenant prefix removed, and the tenants the request names. */
export interface Located {
  path: string;
  segments: readonly string[];
  lenientSegments: readonly string[];
  named: readonly NamedTenant[];
}

type Canonical = Extract<CanonicalResult, { ok: true }>;

// One host (a name or a bracketed IPv6 address) and an optional port: a list, userinfo or spaces
// are not one host, and RFC 9112 asks for a 400 when Host is not exactly one.
const hostHeader = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(:[0-9]{1,5})?$/;
const badHost = () =>
  new Refusal("bad_request", "The Host header must name exactly one host (with an optional port).");

export function locateTenant(namers: readonly Namer[], headers: Headers, c: Canonical): Located | Refusal {
  const named: NamedTenant[] = [];
  let segments: readonly string[] = c.segments;
  let lenientSegments: readonly string[] = c.lenientSegments;
  let path = c.path;
  for (const n of namers) {
    if (n.kind === "subdomain") {
      const host = headers.get("host");
      if (host === null) continue;
      if (!hostHeader.test(host)) return badHost();
      const value = tenantLabel(n.labels, host);
      if (value !== null) named.push({ source: "subdomain", value });
    } else if (n.kind === "pathPrefix") {
      const at = prefixMatch(n.segments, segments);
      if (at < 0) continue;
      const raw = segments[at]!;
      named.push({ source: "pathPrefix", value: raw.includes("%") ? decodeURIComponent(raw) : raw });
      segments = segments.slice(n.segments.length);
      lenientSegments = lenientSegments.slice(n.segments.length);
      path = `/${segments.join("/")}`;
      // "/t/acme/" leaves one empty segment: that is the root, as "/" is everywhere else.
      if (path === "/") segments = lenientSegments = [];
    } else {
      for (const value of headerValues(headers, n.name)) named.push({ source: "header", value });
    }
  }
  return { path, segments, lenientSegments, named };
}

/** The tenant label of `host` (port and one trailing dot dropped, lower case), or null if it does not fit. */
function tenantLabel(pattern: readonly (string | null)[], host: string): string | null {
  let name = host.startsWith("[") ? host : host.replace(/:[0-9]+$/, "");
  name = name.toLowerCase();
  if (name.endsWith(".")) name = name.slice(0, -1);
  const labels = name.split(".");
  if (labels.length !== pattern.length) return null;
  let value: string | null = null;
  for (let i = 0; i < labels.length; i++) {
    const want = pattern[i];
    if (want === null) value = labels[i]!;
    else if (labels[i] !== want) return null;
  }
  return value === "" ? null : value;
}

/** Index of the tenant segment when the path starts with the prefix, else -1. */
function prefixMatch(prefix: readonly (string | null)[], segments: readonly string[]): number {
  if (segments.length < prefix.length) return -1;
  let at = -1;
  for (let i = 0; i < prefix.length; i++) {
    const want = prefix[i];
    if (want === null) {
      if (segments[i] === "") return -1;
      at = i;
    } else if (segments[i] !== want) return -1;
  }
  return at;
}

/**
 * Every value of the header, in each spelling a CGI server reads as it (`X-Tenant`, `X_Tenant`):
 * all of them must name the tenant, whichever one the upstream believes.
 */
export function headerValues(headers: Headers, lowerName: string): string[] {
  const out: string[] = [];
  for (const [name, value] of headers) {
    if (name === lowerName || (name.includes("_") && name.replaceAll("_", "-") === lowerName))
      out.push(value);
  }
  return out;
}
