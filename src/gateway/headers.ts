/**
 * Which headers cross the gateway, in each direction. Headers travel as flat lists of lower-case
 * names and values (what the HTTP/1.1 client parses and writes), so no Headers object is built on
 * the way up and one plain record on the way back.
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

/**
 * The request's headers as the upstream receives them: lower-case names and values, alternating.
 * Framing (Host, Transfer-Encoding) is the client's to add.
 */
export function upstreamRequestFields(incoming: Headers, identity: Identity, injected: Injected): string[] {
  const named = connectionTokens(incoming);
  // A client header that shares a configured header's name in either spelling would reach a CGI
  // upstream beside the injected one, and may be read first.
  const configured = injected.length > 0 ? dashedInjected(injected) : null;
  const out: string[] = [];
  // forEach, not for-of: the iterator allocates a pair per header, on every request.
  incoming.forEach((value, name) => {
    const key = dashed(name);
    if (!(mustNotCross(key) || configured?.has(key) || named?.has(name))) out.push(name, value);
  });
  out.push(
    "x-gatehouse-tenant",
    fieldValue(identity.tenantId),
    "x-gatehouse-key-id",
    fieldValue(identity.keyId),
  );
  if (identity.context !== undefined) out.push("x-gatehouse-context", fieldValue(identity.context));
  out.push("x-request-id", fieldValue(identity.requestId));
  if (identity.clientIp) out.push("x-forwarded-for", fieldValue(identity.clientIp));
  out.push("x-forwarded-proto", "http");
  for (const [name, value] of injected) out.push(name, value);
  return out;
}

/**
 * The gateway's own values are checked before they go out on a line of their own: a control
 * character other than the tab could end the header line. A Headers object refused such a value; a
 * raw request head would carry it.
 */
function fieldValue(value: string): string {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f)
      throw new TypeError("a header value holds a control character");
  }
  return value;
}

/** Fields as a Headers object, for fetch, built-in upstreams and the scenario runner. */
export function toHeaders(fields: readonly string[]): Headers {
  const h = new Headers();
  for (let i = 0; i < fields.length; i += 2) h.append(fields[i]!, fields[i + 1]!);
  return h;
}

/** A Headers object as fields, with the names its Connection header lists. */
export function fieldsOf(headers: Headers): { fields: string[]; connectionTokens: string[] | null } {
  const fields: string[] = [];
  headers.forEach((value, name) => {
    fields.push(name, value);
  });
  const named = connectionTokens(headers);
  return { fields, connectionTokens: named ? [...named] : null };
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

export interface ClientResponseParts {
  /** The upstream's fields (lower-case names, values, alternating) and its Connection tokens. */
  fields: readonly string[];
  connectionTokens: readonly string[] | null;
  /** The upstream's base URL (null for a built-in one) and what was asked of it. */
  upstreamBase: string | null;
  pathAndQuery: string;
  /** Set by the gateway over whatever the upstream sent under these names (lower case). */
  own: ReadonlyMap<string, string>;
  requestId: string;
  /** Leave out the upstream's Content-Length: the body is sent whole and Bun sets it. */
  dropLength: boolean;
}

/**
 * The upstream's response headers as the client may see them, with the gateway's own on top, in
 * the form `new Response` takes fastest: a plain record (several times cheaper than filling a
 * Headers object), or pairs when more than one Set-Cookie must stay a header of its own. Repeated
 * names are joined with ", " as Headers would. Names are matched exactly: clients read response
 * headers by name and do not fold `_` into `-` as CGI servers do.
 */
export function clientResponseFields(p: ClientResponseParts): Record<string, string> | [string, string][] {
  const out: Record<string, string> = { __proto__: null } as unknown as Record<string, string>;
  let cookies: string[] | null = null;
  let rewrite = false;
  const { fields, connectionTokens: named, own } = p;
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i]!;
    if (dropFromResponse.has(name) || named?.includes(name) || own.has(name) || name === "x-request-id")
      continue;
    if (p.dropLength && name === "content-length") continue;
    const value = fields[i + 1]!;
    if (name === "set-cookie") {
      cookies ??= [];
      cookies.push(value);
    } else if (out[name] === undefined) {
      out[name] = value;
      if (carriesUrl.has(name)) rewrite = true;
    } else out[name] += `, ${value}`;
  }
  if (rewrite && p.upstreamBase) {
    const urls = { base: p.upstreamBase, request: p.upstreamBase + p.pathAndQuery };
    for (const [name, relative] of carriesUrl) {
      const value = out[name];
      if (value) out[name] = relative(value, urls);
    }
  }
  for (const [name, value] of own) out[name] = value;
  out["x-request-id"] = p.requestId;
  if (cookies === null) return out;
  if (cookies.length === 1) {
    out["set-cookie"] = cookies[0]!;
    return out;
  }
  const pairs = Object.entries(out);
  for (const c of cookies) pairs.push(["set-cookie", c]);
  return pairs;
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
