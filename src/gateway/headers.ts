/**
 * Which headers cross the gateway, in each direction. Both directions copy the whole list natively
 * and delete the few names that must not cross: about twice as fast as appending entry by entry.
 */

/** Hop-by-hop headers (RFC 9110 §7.6.1) and their historical kin: never forwarded either way. */
const hopByHop = [
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "te",
  "trailer",
  "upgrade",
];

/** Removed from every request before the upstream sees it. */
const dropFromRequest = new Set([
  ...hopByHop,
  "host",
  "expect",
  "proxy-authorization",
  // The client's key: the upstream gets the gateway's identity headers instead.
  "authorization",
  "x-api-key",
  // Rules judge the method that reaches the upstream, so overrides are removed, never obeyed.
  "x-http-method-override",
  "x-http-method",
  "x-method-override",
  // Identity and provenance are set by the gateway, never taken from the client.
  "x-request-id",
  "forwarded",
  "x-forwarded-for",
  "x-forwarded-host",
  "x-forwarded-proto",
  "x-forwarded-port",
  "x-forwarded-prefix",
  "x-real-ip",
  "x-tenant",
  "x-tenant-id",
  "x-consumer-id",
  "x-consumer-username",
  "x-consumer-custom-id",
  "x-credential-identifier",
  "x-authenticated-userid",
  "x-authenticated-scope",
]);

const dropFromResponse = new Set([...hopByHop, "proxy-authenticate"]);

/** Header names a `Connection` header lists are hop-by-hop for this message too. */
function connectionTokens(headers: Headers): Set<string> | null {
  const c = headers.get("connection");
  if (!c) return null;
  return new Set(c.split(",").map((t) => t.trim().toLowerCase()));
}

export interface Identity {
  tenantId: string;
  keyId: string;
  requestId: string;
  clientIp: string | null;
}

export function upstreamRequestHeaders(
  incoming: Headers,
  identity: Identity,
  injected: readonly (readonly [string, string])[],
): Headers {
  const named = connectionTokens(incoming);
  const out = new Headers(incoming);
  for (const name of incoming.keys()) {
    if (dropFromRequest.has(name) || name.startsWith("x-gatehouse-") || named?.has(name)) out.delete(name);
  }
  out.set("x-gatehouse-tenant", identity.tenantId);
  out.set("x-gatehouse-key-id", identity.keyId);
  out.set("x-request-id", identity.requestId);
  if (identity.clientIp) out.set("x-forwarded-for", identity.clientIp);
  out.set("x-forwarded-proto", "http");
  for (const [name, value] of injected) out.set(name, value);
  return out;
}

/**
 * The upstream's response headers as the client may see them. An absolute Location that points back
 * at the upstream is made relative, so the upstream's address never reaches the client.
 */
export function clientResponseHeaders(upstream: Headers, upstreamBase: string | null): Headers {
  const named = connectionTokens(upstream);
  // The copy keeps every Set-Cookie as a header of its own.
  const out = new Headers(upstream);
  for (const name of upstream.keys()) if (dropFromResponse.has(name) || named?.has(name)) out.delete(name);
  const location = out.get("location");
  if (location && upstreamBase) out.set("location", relativeLocation(location, upstreamBase));
  return out;
}

function relativeLocation(location: string, base: string): string {
  let target: URL;
  let origin: URL;
  try {
    target = new URL(location, `${base}/`);
    origin = new URL(base);
  } catch {
    return location;
  }
  if (target.origin !== origin.origin) return location;
  // The client's path space is the upstream's with the base URL's path removed.
  const prefix = origin.pathname.replace(/\/+$/, "");
  const path =
    prefix && target.pathname.startsWith(`${prefix}/`)
      ? target.pathname.slice(prefix.length)
      : target.pathname;
  return `${path}${target.search}${target.hash}`;
}
