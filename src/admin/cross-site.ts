/**
 * Whether a request that may change something was sent by a web page of another site. Browsers mark
 * their requests with Sec-Fetch-Site and, on every non-GET request, Origin; clients that are not
 * browsers (curl, SDKs) send neither and are not affected. GET and HEAD change nothing here, and a
 * cross-site page cannot read their answers: there are no CORS headers to let it.
 */

const READS = new Set(["GET", "HEAD"]);

export function isCrossSiteWrite(request: Request, url: URL): boolean {
  if (READS.has(request.method)) return false;
  // same-site counts as foreign too: a sibling subdomain is another application.
  const site = request.headers.get("sec-fetch-site")?.trim().toLowerCase();
  if (site === "cross-site" || site === "same-site") return true;
  const origin = request.headers.get("origin");
  // `null` (sandboxed frames, file: pages, some redirects) matches no origin.
  return origin !== null && origin !== ownOrigin(request, url);
}

/** scheme://host[:port] of the listener as the request addressed it, the way a browser writes Origin. */
function ownOrigin(request: Request, url: URL): string | null {
  const host = request.headers.get("host");
  if (host === null) return url.origin;
  return URL.parse(`${url.protocol}//${host}`)?.origin ?? null;
}
