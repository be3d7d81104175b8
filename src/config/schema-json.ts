/** A TypeBox schema as the JSON Schema file editors read (gateway.schema.json, scenario.schema.json). */
import type { TSchema } from "@sinclair/typebox";

export function schemaJson(schema: TSchema): string {
  return `${JSON.stringify({ $schema: "http://json-schema.org/draft-07/schema#", ...schema }, null, 2)}\n`;
}
