import { Type as T } from "@sinclair/typebox";
import { t } from "elysia";
import { Identifier } from "../../config/schema.ts";
import { Timestamp } from "../fields.ts";
import { Page, pageQueryFields } from "../pagination.ts";

export const AuditEntry = T.Object(
  {
    id: T.Integer(),
    at: Timestamp(),
    actor: T.String({ description: 'Who: "admin@<client address>", or "config:<file>" for a config sync.' }),
    action: T.String({ examples: ["tenant.create", "key.rotate", "config.reload"] }),
    objectType: T.String({ examples: ["tenant", "key", "config", "credential"] }),
    objectId: T.String(),
    before: T.Unknown({ description: "The object before the change (secrets and hashes masked), or null." }),
    after: T.Unknown({ description: "The object after the change (secrets and hashes masked), or null." }),
  },
  { additionalProperties: false },
);

export const AuditPage = Page(AuditEntry, "Audit entries, newest first.");

export const AuditQuery = t.Object(
  {
    ...pageQueryFields,
    objectType: t.Optional(
      t.Union(
        [
          t.Literal("tenant"),
          t.Literal("key"),
          t.Literal("config"),
          t.Literal("credential"),
          t.Literal("vault"),
        ],
        {
          description: "Only entries about this kind of object.",
          examples: ["tenant"],
        },
      ),
    ),
    objectId: t.Optional({
      ...Identifier,
      description: "Only entries about this object.",
      examples: ["acme"],
    }),
  },
  { additionalProperties: false },
);
