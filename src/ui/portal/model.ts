/** Bodies and answers of the control API's portal routes; the OpenAPI document derives from these. */
import { Type as T } from "@sinclair/typebox";
import { Timestamp } from "../../admin/fields.ts";
import { duration, Identifier } from "../../config/schema.ts";

const strict = { additionalProperties: false } as const;

export const CreatePortalLinkBody = T.Object(
  {
    expiresIn: T.Optional(
      duration("How long the link can be used (default 15m, at least 1m, at most 24h); it works once."),
    ),
  },
  {
    ...strict,
    description: "A one-time sign-in link to the tenant portal.",
    examples: [{ expiresIn: "15m" }],
  },
);

export const PortalLink = T.Object(
  {
    tenant: Identifier,
    url: T.String({
      description:
        "Open it in a browser to sign in to the portal as the tenant: it works once, until expiresAt. The " +
        "secret part follows #, so it never reaches a server's access log. Shown this once.",
      examples: ["http://127.0.0.1:8082/sign-in#Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5"],
    }),
    expiresAt: Timestamp("When the link stops working if it was not used."),
  },
  { ...strict, description: "A sign-in link, shown once; only its hash is stored." },
);

export const PortalRevocation = T.Object(
  {
    tenant: Identifier,
    links: T.Integer({ minimum: 0, description: "Unused, unexpired sign-in links that no longer work." }),
    sessions: T.Integer({ minimum: 0, description: "Portal sessions that were live and are now ended." }),
  },
  { ...strict, description: "What was revoked." },
);
