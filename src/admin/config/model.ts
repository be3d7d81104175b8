import { Type as T } from "@sinclair/typebox";
import { Timestamp } from "../fields.ts";

export const ConfigInfo = T.Object(
  {
    version: T.Integer({ description: "Snapshot version in force; grows with every reload and API change." }),
    file: T.String({ description: "The config file, as given on the command line." }),
    hash: T.String({ description: "sha256 of the effective (interpolated) config." }),
    loadedAt: Timestamp("When the config in force was read."),
    lastReloadError: T.Union(
      [
        T.Object({
          at: Timestamp(),
          errors: T.Array(T.String(), { description: "file:line:col path: message" }),
        }),
        T.Null(),
      ],
      { description: "Why the last reload failed, or null when it succeeded." },
    ),
  },
  { additionalProperties: false },
);

export const ReloadResult = T.Object(
  {
    version: T.Integer({ description: "The snapshot version now in force." }),
    changed: T.Boolean({ description: "False when the file held exactly the config already synced." }),
  },
  { additionalProperties: false },
);

export const ExportYaml = T.String({
  description: "gateway.yaml fragment with the tenants and keys created through the API (hashes only).",
});
