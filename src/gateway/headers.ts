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

/** Set by the gateway on every request; whatever the client sent under these names is removed. */
const setByGateway = [
  "x-gatehouse-tenant",
  "x-gatehouse-key-id",
  "x-request-id",
  "x-forwarded-for",
  "x-forwarded-proto",
];

/**
 * Removed from every request before the upstream sees it. Beyond the client's key and the gateway's
 * own headers, these are the headers some server, framework or proxy in front of an upstream reads
 * as the request's real path, host, scheme, client address or user: gatehouse judged the request
 * it received, so none of them may tell the upstream a different story.
 */
const dropFromRequest = new Set([
  ...hopByHop,
  ...setByGateway,
  "host",
  "expect",
  // Test mode's request for an explanation is the gateway's business alone.
  "gatehouse-debug",
  "proxy-authorization",
  // The client's key: the upstream gets the gateway's identity headers instead.
  "authorization",
  "x-api-key",
  // Rules judge the method that reaches the upstream, so overrides are removed, never obeyed.
  "x-http-method-override",
  "x-http-method",
  "x-method-override",
  // Rules judge the path gatehouse forwards: IIS, Symfony, Zend/Laminas and Drupal have routed on
  // these instead (CVE-2018-14773); X-Original-* are under the prefix below.
  "x-rewrite-url",
  "x-override-url",
  // The host the upstream sees is its own; these rename it for building links and redirects.
  "forwarded",
  "x-host",
  "x-http-host-override",
  // The client's address is the socket's (X-Forwarded-For); CDNs, load balancers and frameworks
  // (Akamai, Cloudflare, Fastly, Google, Rackspace, Microsoft, Rails, Express) read these instead.
  "x-real-ip",
  "true-client-ip",
  "x-client-ip",
  "x-cluster-client-ip",
  "x-originating-ip",
  "x-remote-ip",
  "x-remote-addr",
  "client-ip",
  "cf-connecting-ip",
  "cf-connecting-ipv6",
  "fastly-client-ip",
  "x-proxyuser-ip",
  "x-azure-clientip",
  "x-azure-socketip",
  // The scheme is what gatehouse says in X-Forwarded-Proto; Rack and Cloudflare read these too.
  "x-scheme",
  "x-url-scheme",
  "front-end-https",
  "cf-visitor",
  // The tenant comes only from the key: tenant and consumer headers of other gateways (Kong and
  // kin), and the user an authenticating proxy in front of an upstream would vouch for (oauth2-proxy,
  // Authelia, Apache REMOTE_USER, AWS ALB, Azure App Service, Google IAP and API Gateway).
  "x-tenant",
  "x-tenant-id",
  "x-consumer-id",
  "x-consumer-username",
  "x-consumer-custom-id",
  "x-consumer-groups",
  "x-credential-identifier",
  "x-anonymous-consumer",
  "x-authenticated-userid",
  "x-authenticated-scope",
  "x-authenticated-groups",
  "x-userinfo",
  "remote-user",
  "x-remote-user",
  "x-auth-request-user",
  "x-auth-request-email",
  "x-auth-request-preferred-username",
  "x-auth-request-groups",
  "x-auth-request-access-token",
  "x-amzn-oidc-identity",
  "x-amzn-oidc-data",
  "x-amzn-oidc-accesstoken",
  "x-ms-client-principal",
  "x-ms-client-principal-id",
  "x-ms-client-principal-name",
  "x-ms-client-principal-idp",
  "x-goog-authenticated-user-email",
  "x-goog-authenticated-user-id",
  "x-goog-iap-jwt-assertion",
  // Claims another gateway verified and passed on (WSO2, Envoy's forward_payload_header examples,
  // Kong and Tyk setups): an upstream behind such a gateway trusts them as its identity.
  "x-jwt-assertion",
  "x-jwt-payload",
  "x-jwt-claims",
  "x-id-token",
  "x-access-token",
  "x-tenant-metadata",
  "x-tenant-context",
  "x-apigateway-api-userinfo",
  "x-endpoint-api-userinfo",
]);

/**
 * Whole families removed by prefix: the gateway's own namespace; X-Forwarded-* (host, port, prefix,
 * server, uri, path, scheme, ssl, user, client-cert: every one describes the hop in front of the
 * upstream, which is gatehouse); X-Original-* (URL, URI, Host, Forwarded-For: what a proxy saw
 * before it rewrote the request); X-Envoy-* (an Envoy in front of the upstream obeys retry and
 * timeout headers, and trusts x-envoy-internal and x-envoy-original-path, from an internal hop).
 */
const dropPrefixes = ["x-gatehouse-", "x-forwarded-", "x-original-", "x-envoy-"];

/**
 * CGI, WSGI, PHP and Rack servers (and many frameworks on them) read `X_Gatehouse_Tenant` exactly
 * like `X-Gatehouse-Tenant` (both become HTTP_X_GATEHOUSE_TENANT), so a name is judged in its dashed
 * spelling. Most requests have no `_` in any header name and skip the replace.
 */
const dashed = (name: string) => (name.includes("_") ? name.replaceAll("_", "-") : name);

function mustNotCross(dashedName: string): boolean {
  if (dropFromRequest.has(dashedName)) return true;
  // All prefixes start with "x-": most names end the check here.
  if (dashedName.charCodeAt(0) !== 120 || dashedName.charCodeAt(1) !== 45) return false;
  for (const prefix of dropPrefixes) if (dashedName.startsWith(prefix)) return true;
  return false;
}

type Injected = readonly (readonly [string, string])[];

/** The dashed names of an upstream's configured headers, built once per list (one per snapshot). */
const injectedNames = new WeakMap<Injected, Set<string>>();
function dashedInjected(injected: Injected): Set<string> {
  let names = injectedNames.get(injected);
  if (!names) {
    names = new Set(injected.map(([name]) => dashed(name)));
    injectedNames.set(injected, names);
  }
  return names;
}

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
  /** X-Gatehouse-Context, for upstreams that asked for it (identity/context-header.ts). */
  context?: string;
}

export function upstreamRequestHeaders(incoming: Headers, identity: Identity, injected: Injected): Headers {
  const named = connectionTokens(incoming);
  // A client header that shares a configured header's name in either spelling would reach a CGI
  // upstream beside the injected one, and may be read first.
  const configured = injected.length > 0 ? dashedInjected(injected) : null;
  const out = new Headers(incoming);
  for (const name of incoming.keys()) {
    const key = dashed(name);
    if (mustNotCross(key) || configured?.has(key) || named?.has(name)) out.delete(name);
  }
  out.set("x-gatehouse-tenant", identity.tenantId);
  out.set("x-gatehouse-key-id", identity.keyId);
  if (identity.context !== undefined) out.set("x-gatehouse-context", identity.context);
  out.set("x-request-id", identity.requestId);
  if (identity.clientIp) out.set("x-forwarded-for", identity.clientIp);
  out.set("x-forwarded-proto", "http");
  for (const [name, value] of injected) out.set(name, value);
  return out;
}

/**
 * Response headers that carry a URL the client acts on (redirects, the body's own address, a timed
 * redirect, links such as pagination): one that points at the upstream is made relative, so the
 * upstream's address never reaches the client and a client that follows it comes back through the
 * gateway. Other URLs are the upstream's to give and cross unchanged. A Link's `anchor` parameter
 * is left alone: it names the context of a link, not a place to go, and upstreams rarely send one.
 */
const carriesUrl = new Map<string, (value: string, urls: UpstreamUrls) => string>([
  ["location", (v, urls) => gatewayRelative(v, urls)],
  ["content-location", (v, urls) => gatewayRelative(v, urls)],
  ["refresh", relativeRefresh],
  ["link", relativeLinks],
]);

interface UpstreamUrls {
  /** The upstream's configured base URL. */
  base: string;
  /** The URL this response answers, which relative references in it are resolved against. */
  request: string;
}

/**
 * The upstream's response headers as the client may see them. Names are matched exactly here:
 * clients read response headers by name and do not fold `_` into `-` as CGI servers do.
 */
export function clientResponseHeaders(
  upstream: Headers,
  upstreamBase: string | null,
  pathAndQuery: string,
): Headers {
  const named = connectionTokens(upstream);
  // The copy keeps every Set-Cookie as a header of its own.
  const out = new Headers(upstream);
  let rewrite = false;
  for (const name of upstream.keys()) {
    if (dropFromResponse.has(name) || named?.has(name)) out.delete(name);
    else if (carriesUrl.has(name)) rewrite = true;
  }
  if (rewrite && upstreamBase) {
    const urls = { base: upstreamBase, request: upstreamBase + pathAndQuery };
    for (const [name, relative] of carriesUrl) {
      const value = out.get(name);
      if (value) out.set(name, relative(value, urls));
    }
  }
  return out;
}

/**
 * A reference to the upstream, as a path the client can send to the gateway; any other reference
 * unchanged. The path never starts with `//` (nor `/\`, which URL parsers read alike): a client
 * would read that as another host, e.g. `http://upstream//evil.example/x` as `//evil.example/x`.
 * Merging the leading slashes keeps the meaning, since the gateway merges repeated slashes anyway.
 * Backslashes, tabs and newlines need no care of their own: the URL parser has already turned `\`
 * into `/` and dropped tabs and newlines, exactly as a browser's parser would.
 */
function gatewayRelative(ref: string, urls: UpstreamUrls): string {
  let target: URL;
  let origin: URL;
  try {
    target = new URL(ref, urls.request);
    origin = new URL(urls.base);
  } catch {
    return ref;
  }
  if (target.origin !== origin.origin) return ref;
  // The client's path space is the upstream's with the base URL's path removed.
  const prefix = origin.pathname.replace(/\/+$/, "");
  let path = target.pathname;
  if (prefix && path === prefix) path = "/";
  else if (prefix && path.startsWith(`${prefix}/`)) path = path.slice(prefix.length);
  return `${path.replace(/^[/\\]+/, "/")}${target.search}${target.hash}`;
}

/** `Refresh: 5; url=http://upstream/x`, read as browsers do (HTML's declarative refresh). */
const refreshParts = /^(\s*[\d.]+\s*[;,]?\s*(?:url\s*=\s*)?)(["']?)(.+?)\2\s*$/i;

function relativeRefresh(value: string, urls: UpstreamUrls): string {
  const m = refreshParts.exec(value);
  if (!m) return value;
  const [, lead, quote, ref] = m as unknown as [string, string, string, string];
  return `${lead}${quote}${gatewayRelative(ref, urls)}${quote}`;
}

/** A link's target is always in angle brackets, and cannot itself contain `>` (RFC 8288). */
function relativeLinks(value: string, urls: UpstreamUrls): string {
  return value.replace(/<([^>]*)>/g, (_, ref: string) => `<${gatewayRelative(ref, urls)}>`);
}
