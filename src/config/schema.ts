/**
 * The shape of gateway.yaml, defined once. Validation, the committed gateway.schema.json and the
 * control API's bodies all derive from these definitions.
 */
import { type Static, Type as T } from "@sinclair/typebox";
import { redisClusterFields } from "../cluster/redis/schema.ts";
import { ExternalIds, Identity, RouteIdentity, Scope, TenantIn } from "../identity/schema.ts";

const strict = { additionalProperties: false } as const;

/** Counts beyond this lose precision as numbers; none is meant (a typo, or "unlimited"). */
const MAX_COUNT = Number.MAX_SAFE_INTEGER;

/** A duration: a whole number followed by ms, s, m, h or d (500ms, 10s, 1m). Bounds are checked per use. */
export const duration = (description = "A duration such as 500ms, 10s or 1m.") =>
  T.String({ pattern: "^[0-9]+(ms|s|m|h|d)$", description, examples: ["1s", "1m"] });

/** A size: a whole number followed by b, kb, mb or gb (10mb). */
const byteSize = (description: string) =>
  T.String({ pattern: "^[0-9]+([kKmMgG]?[bB])$", description, examples: ["1mb", "512kb"] });

export const HostPort = T.String({
  pattern: "^(\\[[0-9a-fA-F:.]+\\]|[A-Za-z0-9.-]+):[0-9]{1,5}$",
  description: "HOST:PORT to listen on; port 0 picks a free port.",
  examples: ["127.0.0.1:8080"],
});

export const AdminHost = T.String({
  pattern:
    "^(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*)$",
  description: "A host name or IP address as it appears in Host, without scheme, port or trailing dot.",
  examples: ["gatehouse.internal", "10.0.0.5", "[fd00::5]"],
});

export const Identifier = T.String({
  pattern: "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
  description: "Letters, digits, '_', '.' and '-', starting with a letter or digit; at most 64 characters.",
});

/** Method tokens are checked against the registry by the pattern parser, which can say what is wrong. */
export const RoutePattern = T.String({
  pattern: "^(\\*|[A-Za-z-]+(,[A-Za-z-]+)*) /[^\\s]*$",
  description:
    "METHODS PATH. METHODS is * or a comma list (GET,HEAD) of upper-case methods from the IANA HTTP " +
    "Method Registry, except CONNECT and TRACE, which gatehouse never forwards. In PATH, * is one " +
    "segment, ** any number of segments (last segment only), :name a named segment.",
  examples: ["GET /v1/**", "* /v1/items/:id"],
});

/** `shadow`: evaluated and counted, never refusing; what it would refuse is recorded (README, Shadow mode). */
export const Mode = T.Union([T.Literal("enforce"), T.Literal("shadow")], {
  description:
    "enforce (the default) refuses; shadow only watches: a request it would refuse passes, and its usage " +
    "row and the would-refuse metric record the code it would have got.",
});

export const Limit = T.Object(
  {
    // Window counters are 32-bit.
    limit: T.Integer({
      minimum: 1,
      maximum: 4_294_967_295,
      description: "Cost units admitted in any interval of length `window`.",
    }),
    window: duration("Length of the sliding window: more than 0, at most 365d."),
    by: T.Optional(
      T.Union([T.Literal("tenant"), T.Literal("key")], {
        description: "Count per tenant (all its keys share the limit, the default) or per key.",
      }),
    ),
    name: T.Optional(
      T.String({
        pattern: "^[a-z0-9][a-z0-9_-]{0,31}$",
        description: "Policy name shown in RateLimit headers; derived from limit and window when absent.",
      }),
    ),
    mode: T.Optional(Mode),
  },
  { ...strict, description: "A sliding-window rate limit." },
);

export const Quota = T.Object(
  {
    limit: T.Integer({
      minimum: 1,
      maximum: MAX_COUNT,
      description: "Cost units admitted per calendar period.",
    }),
    period: T.Union([T.Literal("hour"), T.Literal("day"), T.Literal("month")]),
    anchor: T.Optional(
      T.Integer({
        minimum: 1,
        maximum: 28,
        description: "Monthly quotas only: the day of the month a billing cycle starts (default 1).",
      }),
    ),
    timezone: T.Optional(
      T.String({
        description: "IANA time zone the period boundaries follow (default UTC).",
        examples: ["UTC"],
      }),
    ),
    by: T.Optional(T.Union([T.Literal("tenant"), T.Literal("key")])),
    name: T.Optional(T.String({ pattern: "^[a-z0-9][a-z0-9_-]{0,31}$" })),
    mode: T.Optional(Mode),
  },
  { ...strict, description: "A quota over calendar periods, persisted across restarts." },
);

/** A test of one request header or query parameter. */
export const Predicate = T.Union(
  [
    T.Object({ present: T.Literal(true) }, { ...strict, description: "Present, with any value." }),
    T.Object({ equals: T.String() }, { ...strict, description: "Present with this value." }),
    T.Object(
      { oneOf: T.Array(T.String(), { minItems: 1 }) },
      { ...strict, description: "Present with one of these values." },
    ),
  ],
  {
    description:
      "A deny matches when any reading of the request matches (any repetition, name case, decoding, " +
      "value case); an allow only when every reading does, exactly as written.",
  },
);

const predicates = {
  headers: T.Optional(
    T.Record(T.String({ pattern: "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$" }), Predicate, {
      description: "Request headers that must match too, by name (case is ignored).",
    }),
  ),
  query: T.Optional(
    T.Record(T.String({ pattern: "^[^\\x00-\\x1f]+$" }), Predicate, {
      description: "Query parameters that must match too, by decoded name.",
    }),
  ),
  mode: T.Optional(Mode),
};

export const Rule = T.Union(
  [
    T.Object(
      { allow: RoutePattern, scope: T.Optional(Scope), ...predicates },
      { ...strict, description: "Allow requests matching the pattern and every predicate." },
    ),
    T.Object(
      { deny: RoutePattern, scope: T.Optional(Scope), ...predicates },
      { ...strict, description: "Deny requests matching the pattern and every predicate; deny wins." },
    ),
  ],
  {
    description:
      "A rule. Default deny: a request passes when some allow matches and no deny does. Only a deny may be " +
      "in shadow mode.",
  },
);

/** Policies a plan carries, and that tenants and keys may add to. */
const policyFields = {
  limits: T.Optional(T.Array(Limit, { description: "Sliding-window limits; every one must pass." })),
  quota: T.Optional(Quota),
  rules: T.Optional(T.Array(Rule)),
  concurrency: T.Optional(
    T.Integer({
      minimum: 1,
      maximum: MAX_COUNT,
      description: "Most requests of one tenant in flight at once.",
    }),
  ),
};

/** What a tenant on the plan may do for itself in the tenant portal. */
export const PortalSettings = T.Object(
  {
    maxKeys: T.Optional(
      T.Integer({
        minimum: 0,
        maximum: 1000,
        description:
          "Most keys a tenant on this plan may hold (all its keys, wherever made) for the portal to let it " +
          "create another (default 0: the portal shows keys but makes none).",
      }),
    ),
  },
  { ...strict, description: "The tenant portal (server.portal): what tenants on this plan may do there." },
);

export const Plan = T.Object(
  {
    ...policyFields,
    portal: T.Optional(PortalSettings),
    billFailures: T.Optional(
      T.Boolean({
        description:
          "Whether quotas and usage rows count requests that end in a 502, a 504, an upstream 5xx or a " +
          "broken-off response (default false: such a request costs 0; rate limits count it anyway).",
      }),
    ),
  },
  { ...strict, description: "What a tenant on this plan may do." },
);

/** An upstream header whose value comes from the vault, never from the file. */
export const CredentialHeader = T.Object(
  {
    credential: T.String({
      pattern: Identifier.pattern,
      description: "Name of a credential stored with PUT /credentials/{name} on the control API.",
    }),
    format: T.Optional(
      T.String({
        description: 'The header value, with "{value}" where the credential goes (default "{value}").',
        examples: ["Bearer {value}"],
      }),
    ),
  },
  {
    ...strict,
    description: "A vault credential, injected into the header; its value never appears in files.",
  },
);

export const UrlUpstream = T.Object(
  {
    url: T.String({ pattern: "^https?://[^\\s]+$", description: "Base URL; the request path is appended." }),
    timeout: T.Optional(duration("Time to the first response byte (default 30s; more than 0, at most 24d).")),
    idleTimeout: T.Optional(
      duration("Longest pause between body chunks (default 30s; more than 0, at most 24d)."),
    ),
    maxConnections: T.Optional(
      T.Integer({
        minimum: 1,
        maximum: 100000,
        description:
          "Most connections open to this upstream at once (default 256); requests beyond wait for one to free. " +
          "With server.threads above 1 each thread opens its share, rounded down, and at least one.",
      }),
    ),
    headers: T.Optional(
      T.Record(
        T.String({ pattern: "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$" }),
        T.Union([T.String(), CredentialHeader]),
        {
          description:
            "Headers injected into every upstream request; tenants never see them. A value is text, or " +
            "{ credential, format } to inject a vault credential. Names are unique ignoring case and may " +
            "not be hop-by-hop, framing or the gateway's own (x-gatehouse-*, x-request-id, x-forwarded-*); " +
            "values are one line of text.",
          examples: [{ authorization: { credential: "petstore-token", format: "Bearer {value}" } }],
        },
      ),
    ),
    tenantContext: T.Optional(
      T.Boolean({
        description:
          "Send X-Gatehouse-Context: the tenant's metadata and the token's forwarded claims, as JSON (at most 4 KiB).",
      }),
    ),
  },
  strict,
);

const MockAnswer = T.Object(
  {
    status: T.Optional(
      T.Integer({ minimum: 200, maximum: 599, description: "Status of the fixed answer (default 200)." }),
    ),
    body: T.Optional(T.String({ description: "Body of the fixed answer (default: the echo)." })),
    headers: T.Optional(
      T.Record(T.String({ pattern: "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$" }), T.String(), {
        description: "Headers of the fixed answer.",
      }),
    ),
    delay: T.Optional(duration("Time before the answer's headers (on test mode's clock when it runs).")),
  },
  {
    ...strict,
    description: "A fixed answer, or the echo when neither status nor body is given; either after `delay`.",
  },
);

export const MockUpstream = T.Object(
  {
    mock: T.Union([
      T.Literal("echo", { description: "Answers with the request it received, as JSON." }),
      T.Literal("hang", { description: "Never answers: the upstream timeout turns it into a 504." }),
      T.Literal("stall", {
        description: "Sends headers and the first part of a body, then nothing: the idle timeout cuts it.",
      }),
      T.Literal("close", { description: "Closes the connection without an answer: a 502." }),
      MockAnswer,
    ]),
    timeout: T.Optional(duration("Time to the first response byte (default 30s).")),
    idleTimeout: T.Optional(duration("Longest pause between body chunks (default 30s).")),
    tenantContext: T.Optional(
      T.Boolean({
        description:
          "Send X-Gatehouse-Context: the tenant's metadata and the token's forwarded claims, as JSON (at most 4 KiB).",
      }),
    ),
  },
  { ...strict, description: "A built-in upstream, for development and tests: no network involved." },
);

export const Upstream = T.Union([UrlUpstream, MockUpstream]);

const fallback = T.Optional(
  T.Integer({
    minimum: 0,
    maximum: MAX_COUNT,
    description: "Cost units counted when the value is missing or malformed (default: the route's cost).",
  }),
);

export const CostFrom = T.Union(
  [
    T.Object(
      {
        header: T.String({
          pattern: "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$",
          description: "A response header holding a non-negative number.",
          examples: ["x-usage-units"],
        }),
        fallback,
      },
      { ...strict, description: "Cost read from a response header." },
    ),
    T.Object(
      {
        json: T.String({
          pattern: "^[^.]+(\\.[^.]+)*$",
          description: "Dotted path to a number in the JSON response body; a number indexes a list.",
          examples: ["usage.total_tokens"],
        }),
        maxBytes: T.Optional(
          byteSize("Bodies longer than this are not measured (default 1mb, at most 64mb)."),
        ),
        fallback,
      },
      { ...strict, description: "Cost read from a field of the JSON response body." },
    ),
  ],
  {
    description:
      "Post-paid cost: the request is admitted and counted on `cost`; when the response ends, the value " +
      "read from it replaces that in limits, quotas and the usage row.",
  },
);

export const Route = T.Object(
  {
    match: RoutePattern,
    upstream: Identifier,
    cost: T.Optional(
      T.Integer({
        minimum: 0,
        maximum: MAX_COUNT,
        description: "Cost units a request counts (default 1); with costFrom, what admission counts.",
      }),
    ),
    identity: T.Optional(RouteIdentity),
    tenantIn: T.Optional(TenantIn),
    costFrom: T.Optional(CostFrom),
  },
  strict,
);

export const KeyDecl = T.Object(
  {
    id: Identifier,
    name: T.Optional(T.String({ maxLength: 100, description: "A short label shown in key listings." })),
    metadata: T.Optional(
      T.Record(T.String(), T.String({ maxLength: 512 }), {
        maxProperties: 50,
        description: "Free-form string labels (at most 50).",
      }),
    ),
    secret: T.Optional(
      T.String({ minLength: 4, maxLength: 256, description: "Plaintext key; stored only as a hash." }),
    ),
    hash: T.Optional(
      T.String({
        pattern: "^sha256:[0-9a-f]{64}$",
        description: "sha256:<hex> of the key, for committed configs.",
      }),
    ),
    expires: T.Optional(
      T.String({ format: "date-time", description: "RFC 3339 time after which the key fails." }),
    ),
    disabled: T.Optional(T.Boolean()),
    limits: T.Optional(T.Array(Limit, { description: "Limits added for this key; they count per key." })),
    rules: T.Optional(
      T.Array(Rule, {
        description: "Rules added to the tenant's for this key, e.g. a deny that makes it read-only.",
      }),
    ),
    quota: T.Optional(Quota),
  },
  { ...strict, description: "An API key: give exactly one of secret or hash." },
);

export const TenantDecl = T.Object(
  {
    name: T.Optional(T.String({ maxLength: 200 })),
    plan: Identifier,
    metadata: T.Optional(T.Record(T.String(), T.String())),
    externalIds: T.Optional(ExternalIds),
    upstreams: T.Optional(
      T.Record(Identifier, Identifier, { description: "Per-tenant routing: upstream name → replacement." }),
    ),
    credentials: T.Optional(
      T.Record(Identifier, Identifier, {
        description:
          "Per-tenant upstream credentials: upstream name → vault credential that replaces the one its " +
          "headers inject, for this tenant's requests (the upstream must inject exactly one).",
        examples: [{ petstore: "acme-petstore-token" }],
      }),
    ),
    disabled: T.Optional(T.Boolean()),
    keys: T.Optional(T.Array(KeyDecl)),
    ...policyFields,
  },
  strict,
);

export const Server = T.Object(
  {
    listen: T.Optional(HostPort),
    admin: T.Optional(HostPort),
    adminToken: T.Optional(T.String({ description: "Bearer token for the control API; empty means none." })),
    adminHosts: T.Optional(
      T.Array(AdminHost, {
        description:
          "Host names the control API answers to besides localhost, 127.x.x.x and [::1] (read at start-up). " +
          "Requests addressed to any other name are refused (421), which stops DNS rebinding. Without a token " +
          "the check always applies; with a token only when this list is set. List only names whose address " +
          "you control.",
        examples: [["gatehouse.internal"]],
      }),
    ),
    portal: T.Optional({
      ...HostPort,
      description:
        "HOST:PORT of the tenant portal, a listener of its own where tenants sign in with one-time links " +
        "(POST /tenants/{id}/portal-links). No portal listener without it.",
      examples: ["127.0.0.1:8082"],
    }),
    portalUrl: T.Optional(
      T.String({
        pattern: "^https?://[^\\s]+$",
        description:
          "The portal's address as tenants' browsers reach it, used in sign-in links (default: " +
          "http:// and the address server.portal is bound to).",
        examples: ["https://portal.example.com"],
      }),
    ),
    maxBodySize: T.Optional(byteSize("Largest request body (default 10mb, at most 1024gb).")),
    idleTimeout: T.Optional(
      duration("Closes client connections idle this long (default 30s; more than 0, at most 255s)."),
    ),
    drainTimeout: T.Optional(
      duration("How long shutdown waits for in-flight requests (default 30s, at most 24d)."),
    ),
    threads: T.Optional(
      T.Integer({
        minimum: 1,
        maximum: 64,
        description:
          "Threads serving the data plane, all on the data listener's port (default 1; read at start-up). " +
          "Above 1, limits, quotas and concurrency caps are counted in memory the threads share, exactly " +
          "as on one thread; worth it only with idle cores (README, Performance).",
      }),
    ),
  },
  strict,
);

export const Usage = T.Object(
  {
    flushInterval: T.Optional(
      duration("Longest time a usage row waits in memory (default 1s, at most 24d)."),
    ),
    flushRows: T.Optional(
      T.Integer({
        minimum: 1,
        maximum: MAX_COUNT,
        description: "Rows that trigger a flush (default 10000).",
      }),
    ),
    retention: T.Optional(
      duration(
        "Age after which usage rows and their rollups are removed (default 90d, at most 3650d; 0d keeps them forever).",
      ),
    ),
    bufferRows: T.Optional(
      T.Integer({
        minimum: 1,
        maximum: MAX_COUNT,
        description:
          "Most rows held in memory while the database refuses writes; beyond it the oldest are dropped " +
          "and counted (default 100000).",
      }),
    ),
    synchronous: T.Optional(
      T.Union([T.Literal("normal"), T.Literal("full")], {
        description:
          "SQLite synchronous mode: full also survives power loss at some write cost (default normal).",
      }),
    ),
  },
  strict,
);

export const LogSettings = T.Object(
  {
    level: T.Optional(
      T.Union([T.Literal("error"), T.Literal("warn"), T.Literal("info"), T.Literal("debug")], {
        description:
          "Least severe log line written (default info): error, warn, info or debug. The environment " +
          "variable GATEHOUSE_LOG_LEVEL overrides it. A reload applies a change.",
      }),
    ),
    access: T.Optional(
      T.String({
        minLength: 1,
        description:
          "Access log, one JSON line per request with the usage row's fields (never a key or the query " +
          'string): "off" (the default), "stderr", "stdout", or a file to append to (relative to the ' +
          "working directory). Read at start-up. Lines wait in memory while the destination is slow; " +
          "past 1 MiB they are dropped and counted in gatehouse_access_log_dropped_total.",
        examples: ["stderr", "/var/log/gatehouse/access.log"],
      }),
    ),
  },
  { ...strict, description: "What gatehouse logs, and where its access log goes." },
);

export const Vault = T.Object(
  {
    masterKeyFile: T.Optional(
      T.String({
        minLength: 1,
        description:
          "File holding the master key (base64 of 32 bytes, as `gatehouse new-master-key` prints it), read " +
          "at start-up; a relative path is taken from the working directory. GATEHOUSE_MASTER_KEY (the key) " +
          "and GATEHOUSE_MASTER_KEY_FILE (a path) take precedence.",
      }),
    ),
  },
  { ...strict, description: "Where the master key that encrypts stored credentials comes from." },
);

export const Cluster = T.Object(
  {
    postgres: T.Optional(
      T.String({
        pattern: "^postgres(ql)?://[^\\s]+$",
        description:
          "PostgreSQL that the nodes share: tenants and keys made through the control API, stored " +
          "credentials (encrypted), the audit log of their changes, and usage rows and rollups. Each node " +
          "keeps a copy in its own database and serves from it while PostgreSQL is away. Put the password " +
          "in the environment: ${GATEHOUSE_POSTGRES_URL}.",
        examples: ["postgres://gatehouse@db.internal:5432/gatehouse"],
      }),
    ),
    ...redisClusterFields,
  },
  {
    ...strict,
    description:
      "Several gatehouse nodes behind one load balancer, sharing state (README, Cluster mode). " +
      "Read at start-up.",
  },
);

export const GatewayConfig = T.Object(
  {
    version: T.Literal(1),
    server: T.Optional(Server),
    database: T.Optional(T.String({ description: 'SQLite file, or ":memory:" for an ephemeral run.' })),
    usage: T.Optional(Usage),
    identity: T.Optional(Identity),
    log: T.Optional(LogSettings),
    vault: T.Optional(Vault),
    cluster: T.Optional(Cluster),
    upstreams: T.Record(Identifier, Upstream),
    plans: T.Record(Identifier, Plan),
    routes: T.Array(Route),
    tenants: T.Optional(T.Record(Identifier, TenantDecl)),
  },
  { ...strict, $id: "https://gatehouse.local/gateway.schema.json", title: "gatehouse gateway.yaml" },
);

export type GatewayConfig = Static<typeof GatewayConfig>;
export type LimitDecl = Static<typeof Limit>;
export type QuotaDecl = Static<typeof Quota>;
export type RuleDecl = Static<typeof Rule>;
export type PredicateDecl = Static<typeof Predicate>;
export type CostFromDecl = Static<typeof CostFrom>;
export type PlanDecl = Static<typeof Plan>;
export type PortalDecl = Static<typeof PortalSettings>;
export type RouteDecl = Static<typeof Route>;
export type UpstreamDecl = Static<typeof Upstream>;
export type MockUpstreamDecl = Static<typeof MockUpstream>;
export type UrlUpstreamDecl = Static<typeof UrlUpstream>;
export type CredentialHeaderDecl = Static<typeof CredentialHeader>;
export type TenantDecl = Static<typeof TenantDecl>;
export type KeyDecl = Static<typeof KeyDecl>;
export type UsageDecl = Static<typeof Usage>;
export type LogDecl = Static<typeof LogSettings>;
export type ClusterDecl = Static<typeof Cluster>;
