/**
 * Credential bodies and views. The value goes in (PUT) and never comes out: no view has a field that
 * could hold it, and the example is a placeholder, not a value anyone uses.
 */
import { Type as T } from "@sinclair/typebox";
import { Identifier } from "../../config/schema.ts";
import { SafeText, Timestamp } from "../fields.ts";
import { Page } from "../pagination.ts";

const strict = { additionalProperties: false } as const;

export const NameParams = T.Object(
  { name: { ...Identifier, description: "The credential's name.", examples: ["petstore-token"] } },
  strict,
);

/** Printable ASCII, no space at either end: it becomes (part of) a header value as it is. */
export const CredentialValue = T.String({
  minLength: 1,
  maxLength: 8192,
  pattern: "^[\\x21-\\x7e]([\\x20-\\x7e]*[\\x21-\\x7e])?$",
  description:
    "The secret, e.g. the upstream's API token. Printable ASCII without leading or trailing spaces, at " +
    "most 8192 characters. Stored encrypted; never returned.",
  examples: ["<the upstream's token>"],
});

export const PutCredentialBody = T.Object(
  {
    value: CredentialValue,
    description: T.Optional(
      SafeText(200, 'What the credential is for; kept when a later PUT leaves it out, cleared by "".'),
    ),
  },
  {
    ...strict,
    description: "A credential's value (write-only) and an optional description.",
    examples: [{ value: "<the upstream's token>", description: "Petstore's API token" }],
  },
);

export const CredentialView = T.Object(
  {
    name: Identifier,
    description: T.Union([T.String(), T.Null()]),
    createdAt: Timestamp(),
    updatedAt: Timestamp("When the value or description last changed."),
    available: T.Boolean({
      description:
        "false when the stored value could not be decrypted at start-up (altered, or moved from another " +
        "name): requests that need it get 502 until it is stored again.",
    }),
    usedBy: T.Object(
      {
        upstreams: T.Array(T.Object({ upstream: T.String(), header: T.String() }, strict), {
          description: "Upstream headers of the config in force that inject it.",
        }),
        tenants: T.Array(T.Object({ tenant: T.String(), upstream: T.String() }, strict), {
          description: "Tenants whose requests to that upstream carry it instead of the upstream's own.",
        }),
      },
      strict,
    ),
  },
  { ...strict, description: "A stored credential's metadata. Never carries its value." },
);

export const CredentialPage = Page(CredentialView, "A page of credentials, ordered by name.");
