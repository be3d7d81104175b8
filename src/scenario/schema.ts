/**
 * The shape of a scenario file (`gatehouse test FILE...`), defined once: the loader validates against
 * it and `scenario.schema.json`, for editors, is generated from it.
 */
import { type Static, Type as T, type TSchema } from "@sinclair/typebox";
import { duration, Identifier } from "../config/schema.ts";

const strict = { additionalProperties: false } as const;

const Instant = (description: string) =>
  T.String({ format: "date-time", description, examples: ["2027-01-31T23:59:00Z"] });

const HeaderName = T.String({ pattern: "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$" });

export const TextMatch = T.Union(
  [
    T.String({ description: "Exactly this text." }),
    T.Object({ contains: T.String() }, { ...strict, description: "Text containing this." }),
    T.Object({ matches: T.String() }, { ...strict, description: "Text matching this regular expression." }),
  ],
  { description: "A text, or { contains } / { matches }." },
);

const HeaderMatches = T.Record(HeaderName, T.Union([TextMatch, T.Null()]), {
  description: "Header name → expected value; null means the header must be absent.",
});

export const ResponseExpectation = T.Object(
  {
    status: T.Optional(T.Integer({ minimum: 100, maximum: 599 })),
    problem: T.Optional(
      T.String({
        pattern: "^[a-z][a-z-]*$",
        description: 'The problem type\'s code, e.g. "rate-limited" for urn:gatehouse:problem:rate-limited.',
      }),
    ),
    headers: T.Optional(HeaderMatches),
    json: T.Optional(
      T.Unknown({
        description:
          "The body parsed as JSON must contain this: every key given, recursively; lists element by element.",
      }),
    ),
    text: T.Optional(TextMatch),
    complete: T.Optional(
      T.Boolean({ description: "Whether the body arrives whole (false: it breaks off, e.g. an idle cut)." }),
    ),
    upstream: T.Optional(
      T.Object(
        {
          received: T.Boolean({ description: "Whether the request reached an upstream at all." }),
          method: T.Optional(T.String()),
          path: T.Optional(T.String({ description: "The path as forwarded, without the query." })),
          query: T.Optional(T.String({ description: "The query as forwarded, without '?'." })),
          headers: T.Optional(HeaderMatches),
        },
        {
          ...strict,
          description: "What the upstream received. Needs an in-process run (not --target).",
        },
      ),
    ),
  },
  { ...strict, description: "What the answer must be; only what is given is checked." },
);

export const RequestSpec = T.Object(
  {
    as: T.Optional(
      T.String({
        description:
          "A key id: its secret is sent as X-API-Key. Known secrets: keys declared with `secret:` in the " +
          "config, keys created or rotated by an earlier `admin` step, and `secrets:`.",
      }),
    ),
    secret: T.Optional(
      T.Union([T.Literal("current"), T.Literal("previous")], {
        description: "previous: the secret the key had before its last rotation in this scenario.",
      }),
    ),
    method: T.Optional(T.String({ pattern: "^[A-Z][A-Z-]*$", description: "Default GET." })),
    path: T.String({ pattern: "^/", description: "Path and query, e.g. /v1/items?limit=2." }),
    headers: T.Optional(T.Record(HeaderName, T.String())),
    body: T.Optional(T.String({ description: "A raw body." })),
    json: T.Optional(T.Unknown({ description: "A JSON body (sets content-type: application/json)." })),
    repeat: T.Optional(
      T.Integer({
        minimum: 1,
        maximum: 10_000,
        description: "Send it this many times, checking each answer.",
      }),
    ),
    every: T.Optional(duration("Clock time between repetitions (default 0).")),
    jitter: T.Optional(duration("Up to this much more or less between repetitions, from the run's --seed.")),
  },
  strict,
);

const AdminRequest = T.Object(
  {
    method: T.Optional(T.String({ pattern: "^[A-Z]+$", description: "Default GET." })),
    path: T.String({ pattern: "^/" }),
    json: T.Optional(T.Unknown({ description: "A JSON body." })),
  },
  strict,
);

const AdminExpectation = T.Object(
  {
    status: T.Optional(T.Integer({ minimum: 100, maximum: 599, description: "Default: any 2xx." })),
    problem: ResponseExpectation.properties.problem,
    headers: T.Optional(HeaderMatches),
    json: ResponseExpectation.properties.json,
    text: ResponseExpectation.properties.text,
  },
  strict,
);

const UsageGroupExpectation = T.Object(
  {
    group: T.Optional(T.Union([T.String(), T.Null()])),
    requests: T.Optional(T.Integer({ minimum: 0 })),
    errors: T.Optional(T.Integer({ minimum: 0 })),
    costUnits: T.Optional(T.Integer({ minimum: 0 })),
    bytesIn: T.Optional(T.Integer({ minimum: 0 })),
    bytesOut: T.Optional(T.Integer({ minimum: 0 })),
  },
  strict,
);

const step = <P extends Record<string, TSchema>>(props: P, description: string) =>
  T.Object(
    { name: T.Optional(T.String({ description: "Shown in the report." })), ...props },
    { ...strict, description },
  );

export const RequestStep = step(
  {
    request: RequestSpec,
    expect: T.Optional(ResponseExpectation),
    background: T.Optional(
      T.String({
        pattern: Identifier.pattern,
        description: "Send without waiting; a later `await` step with this name checks the answer.",
      }),
    ),
  },
  "Sends a request to the data plane.",
);

export const AwaitStep = step(
  {
    await: T.String({ pattern: Identifier.pattern, description: "The name of a background request." }),
    expect: T.Optional(ResponseExpectation),
  },
  "Waits for a background request's answer and checks it.",
);

export const AdvanceStep = step(
  { advance: duration("Moves the clock forward; what falls due on the way runs, in time order.") },
  "Moves the clock forward.",
);

export const SetStep = step(
  { set: Instant("Moves the clock to this time; never backwards.") },
  "Sets the clock.",
);

export const AdminStep = step(
  { admin: AdminRequest, expect: T.Optional(AdminExpectation) },
  "Calls the control API (with the admin token, if the config has one). Default expectation: a 2xx.",
);

export const ReloadStep = step(
  {
    reload: T.Object(
      {
        config: T.Optional(T.String({ description: "A gateway.yaml path, relative to the scenario file." })),
        gateway: T.Optional(T.Unknown({ description: "An inline gateway.yaml." })),
      },
      {
        ...strict,
        description: "Replaces the config file with this one, then reloads; with neither, reloads as is.",
      },
    ),
    expect: T.Optional(AdminExpectation),
  },
  "Reloads the config (POST /config/reload). Default expectation: 200.",
);

export const ExpectUsageStep = step(
  {
    expectUsage: T.Object(
      {
        tenant: T.Optional(T.String()),
        from: T.Optional(Instant("Default: 24 hours before `to`.")),
        to: T.Optional(Instant("Default: now, on the clock.")),
        groupBy: T.Optional(
          T.Union(["route", "key", "status", "minute", "hour", "day"].map((g) => T.Literal(g))),
        ),
        groups: T.Optional(
          T.Array(UsageGroupExpectation, {
            description: "The groups, in the report's order; each a subset.",
          }),
        ),
        total: T.Optional(UsageGroupExpectation),
      },
      { ...strict, description: "GET /usage with these parameters; the answer must contain what is given." },
    ),
  },
  "Checks usage as GET /usage reports it.",
);

export const Step = T.Union([
  RequestStep,
  AwaitStep,
  AdvanceStep,
  SetStep,
  AdminStep,
  ReloadStep,
  ExpectUsageStep,
]);

export const Scenario = T.Object(
  {
    name: T.String({ minLength: 1 }),
    description: T.Optional(T.String()),
    config: T.Optional(
      T.String({ description: "The gateway.yaml to run, relative to this file (or give `gateway`)." }),
    ),
    gateway: T.Optional(T.Unknown({ description: "An inline gateway.yaml (or give `config`)." })),
    env: T.Optional(
      T.Record(T.String({ pattern: "^[A-Za-z_][A-Za-z0-9_]*$" }), T.String(), {
        description: "Environment for the config's ${VAR} references, over the runner's own.",
      }),
    ),
    clock: T.Optional(Instant("Where the frozen clock starts (default 2030-01-01T00:00:00Z).")),
    secrets: T.Optional(
      T.Record(T.String(), T.String(), {
        description: "Key id → secret, for keys the config declares by hash only (or a --target's keys).",
      }),
    ),
    steps: T.Array(Step, { minItems: 1 }),
  },
  {
    ...strict,
    $id: "https://gatehouse.local/scenario.schema.json",
    title: "gatehouse scenario",
    description: "Steps run in order against a fresh gateway on an in-memory database with a frozen clock.",
  },
);

export type Scenario = Static<typeof Scenario>;
export type Step = Static<typeof Step>;
export type RequestStep = Static<typeof RequestStep>;
export type ResponseExpectation = Static<typeof ResponseExpectation>;
export type AdminExpectation = Static<typeof AdminExpectation>;
export type TextMatch = Static<typeof TextMatch>;
export type UsageGroupExpectation = Static<typeof UsageGroupExpectation>;

export const DEFAULT_CLOCK = "2030-01-01T00:00:00Z";
