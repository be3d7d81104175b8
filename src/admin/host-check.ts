/**
 * Which host name a control-API request is addressed to, and whether that name is this listener's.
 * This is the defence against DNS rebinding: a web page whose own host name an attacker re-points at
 * 127.0.0.1 reaches the listener with that foreign name in Host, which a browser always sends as
 * the page's origin wrote it (lower case, no trailing dot, IPv4 as a dotted quad, IPv6 compressed).
 * Only those canonical forms are accepted; anything else a browser would never send is refused.
 */

/** `name[:port]` or `[ipv6][:port]`: one value, nothing else (no userinfo, path, list or space). */
const HOST_HEADER = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(?::([0-9]{1,5}))?$/;
const OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
const LOOPBACK_V4 = new RegExp(`^127\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);

/**
 * The host name a request is addressed to, lower-cased and without its port; null when it has
 * none usable (missing, repeated or malformed Host). Bun builds request.url from Host and drops the
 * authority of an absolute-form target, so the Host header is what names the target. A request built
 * in-process has no Host header; its URL names the target then.
 */
export function requestHost(request: Request, url: URL): string | null {
  const header = request.headers.get("host");
  if (header === null) return url.hostname;
  const m = HOST_HEADER.exec(header);
  if (!m || Number(m[2] ?? 0) > 65535) return null;
  return m[1]!.toLowerCase();
}

/** The loopback names a browser can use for a local listener. */
export function isLoopbackName(name: string): boolean {
  return name === "localhost" || name === "[::1]" || LOOPBACK_V4.test(name);
}

/**
 * A test for "this name is the listener's": a loopback name, or one of the operator's own names
 * (server.adminHosts), compared in the canonical form a browser sends.
 */
export function hostMatcher(adminHosts: readonly string[]): (name: string) => boolean {
  const listed = new Set(adminHosts.map(canonicalHost));
  return (name) => isLoopbackName(name) || listed.has(name);
}

/** `Gatehouse.Internal` → `gatehouse.internal`, `[FE80:0::1]` → `[fe80::1]`, as a browser writes it. */
export function canonicalHost(name: string): string {
  return URL.parse(`http://${name}/`)?.hostname ?? name.toLowerCase();
}
