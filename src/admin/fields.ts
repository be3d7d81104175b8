/**
 * Field schemas shared by the admin models, and the rule that keeps header-breaking characters out
 * of everything the API stores: tenant and key ids, names and metadata end up in upstream headers,
 * logs and YAML exports.
 */
import { Type as T, type TOptional, type TSchema } from "@sinclair/typebox";
import { Identifier } from "../config/schema.ts";

export const NO_CONTROL_CHARS = "^[^\\x00-\\x1f\\x7f]*$";

export const SafeText = (maxLength: number, description?: string) =>
  T.String({ maxLength, pattern: NO_CONTROL_CHARS, description });

export const Timestamp = (description?: string) =>
  T.String({ format: "date-time", description, examples: ["2026-01-01T00:00:00.000Z"] });

export const NullableTimestamp = (description?: string) => T.Union([Timestamp(), T.Null()], { description });

/** Free-form labels on tenants and keys. Names are identifiers: they end up in exports and listings. */
export const Metadata = T.Record(T.String({ pattern: Identifier.pattern }), SafeText(512), {
  maxProperties: 50,
  // Without it a name that breaks the pattern would be accepted as an extra property.
  additionalProperties: false,
  description: "Free-form string labels (at most 50; names are identifiers, values at most 512 characters).",
  examples: [{ region: "eu" }],
});

export const Source = T.Union([T.Literal("file"), T.Literal("api")], {
  description: "file: declared in gateway.yaml and read-only here; api: created through this API.",
});

/** `{id}` of /tenants/{id}/...; the example names the tenant the spec's request examples create. */
export const TenantIdParams = T.Object(
  { id: { ...Identifier, description: "The tenant's id.", examples: ["initech"] } },
  { additionalProperties: false },
);

/** `{id}` of /keys/{id}/...; the example names the key the spec's request examples create. */
export const KeyIdParams = T.Object(
  { id: { ...Identifier, description: "The key's id.", examples: ["initech-ci"] } },
  { additionalProperties: false },
);

export const iso = (ms: number) => new Date(ms).toISOString();
export const isoOrNull = (ms: number | null) => (ms === null ? null : iso(ms));

const isControl = (c: number) => c < 0x20 || c === 0x7f;

export function hasControlChar(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (isControl(text.charCodeAt(i))) return true;
  return false;
}

/**
 * Deepest nesting of arrays and objects any request body or query may have. The API's own shapes
 * are a few levels deep; a body within the size limit can be nested 100 000 levels, and walking that
 * (TypeBox, Elysia's validation messages, findControlChar) overflows the stack.
 */
export const MAX_NESTING = 32;

/**
 * Whether `value` nests arrays and objects deeper than `max`. Iterative, so it is safe on any depth,
 * and it stops at the first container past the limit.
 */
export function nestedDeeperThan(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== "object") continue;
    if (depth >= max) return true;
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}

/**
 * The JSON path of the first string (key or value) holding a control character, or null. Recursive:
 * only called on values nestedDeeperThan has bounded.
 */
export function findControlChar(value: unknown, path = ""): string | null {
  if (typeof value === "string") return hasControlChar(value) ? path || "/" : null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const hit = findControlChar(value[i], `${path}/${i}`);
      if (hit) return hit;
    }
    return null;
  }
  if (value && typeof value === "object") {
    for (const [k, v] of Object.entries(value)) {
      if (hasControlChar(k)) return `${path}/${sanitize(k)}`;
      const hit = findControlChar(v, `${path}/${k}`);
      if (hit) return hit;
    }
  }
  return null;
}

/** For echoing client-chosen names (e.g. an unknown property) in an error: printable and short. */
export function sanitize(text: string, max = 64): string {
  let clean = "";
  for (const ch of text) clean += isControl(ch.charCodeAt(0)) ? "?" : ch;
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}

/** Marks every property of an object schema optional, keeping its options (strictness, description). */
export function partial<P extends Record<string, TSchema>>(props: P) {
  return Object.fromEntries(Object.entries(props).map(([k, v]) => [k, T.Optional(v)])) as {
    [K in keyof P]: TOptional<P[K]>;
  };
}

export const NoContent = T.Void({ description: "Done; there is no body." });
