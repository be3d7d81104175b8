/**
 * Tenant bodies and views. The policy fields (plan, upstreams, credentials, limits, rules, quota,
 * concurrency, disabled) are gateway.yaml's own TenantDecl definitions; only the free-text fields are tightened,
 * because names and metadata travel further than the file's (headers, exports, the audit log).
 */
import { Type as T } from "@sinclair/typebox";
import { Identifier, Limit, Quota, Rule, TenantDecl } from "../../config/schema.ts";
import { ExternalIds } from "../../identity/schema.ts";
import { Metadata, NullableTimestamp, partial, SafeText, Source, Timestamp } from "../fields.ts";
import { Page } from "../pagination.ts";

const decl = TenantDecl.properties;
const strict = { additionalProperties: false } as const;

export const TenantName = SafeText(200, "Display name; defaults to the id.");

const editable = {
  name: TenantName,
  plan: decl.plan,
  metadata: Metadata,
  externalIds: ExternalIds,
  upstreams: decl.upstreams,
  credentials: decl.credentials,
  limits: decl.limits,
  rules: decl.rules,
  quota: decl.quota,
  concurrency: decl.concurrency,
  disabled: decl.disabled,
};

export const CreateTenantBody = T.Object(
  { id: Identifier, ...partial(editable), plan: decl.plan },
  {
    ...strict,
    description: "A new tenant. Server-owned fields (source, createdAt, ...) cannot be set.",
    examples: [{ id: "initech", name: "Initech", plan: "free", metadata: { region: "us" } }],
  },
);

export const PatchTenantBody = T.Object(
  {
    ...partial(editable),
    quota: T.Optional(T.Union([Quota, T.Null()], { description: "null removes the tenant's own quota." })),
    concurrency: T.Optional(
      T.Union([T.Integer({ minimum: 1 }), T.Null()], { description: "null falls back to the plan's." }),
    ),
  },
  {
    ...strict,
    minProperties: 1,
    description: "Fields to change; absent fields keep their value. disabled: true disables the tenant.",
    examples: [{ name: "Initech Corp", metadata: { region: "eu" } }],
  },
);

export const TenantView = T.Object(
  {
    id: Identifier,
    name: T.String(),
    plan: T.String(),
    metadata: T.Record(T.String(), T.String()),
    externalIds: T.Array(T.String(), { description: "Other names a JWT claim may give the tenant by." }),
    upstreams: T.Record(T.String(), T.String()),
    credentials: T.Record(T.String(), T.String(), {
      description: "Upstream name → the vault credential this tenant's requests carry there (names only).",
    }),
    limits: T.Array(Limit),
    rules: T.Array(Rule),
    quota: T.Union([Quota, T.Null()]),
    concurrency: T.Union([T.Integer(), T.Null()]),
    disabled: T.Boolean(),
    source: Source,
    sourceRef: T.Union([T.String(), T.Null()], {
      description: 'Where a file-owned tenant is declared, e.g. "gateway.yaml:34".',
    }),
    createdAt: Timestamp(),
    updatedAt: Timestamp(),
    keys: T.Integer({ description: "How many keys the tenant has." }),
    lastUsedAt: NullableTimestamp("The latest use of any of its keys."),
  },
  { ...strict, description: "A tenant. Never carries key secrets or hashes." },
);

export const TenantPage = Page(TenantView, "A page of tenants, ordered by id.");
