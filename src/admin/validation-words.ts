/**
 * Validation failures in plain words: which field, and what it takes (the allowed values, the range,
 * the form), read from the field's schema. Never a validation library's message, a schema kind or a
 * regular expression, and never the value sent (a secret pasted into the wrong field stays unechoed).
 */
import { type ValueError, ValueErrorType } from "@sinclair/typebox/errors";
import { EXTERNAL_ID_PATTERN, Scope } from "../identity/schema.ts";
import { closest } from "../lib/closest.ts";
import { INSTANT_PATTERN } from "../lib/instant.ts";
import { CredentialValue } from "./credentials/model.ts";
import { NO_CONTROL_CHARS, sanitize } from "./fields.ts";

type Schema = Record<string, unknown>;

/** What a string with this pattern is, as a noun phrase. Every pattern the API uses has one (a test checks). */
const patternWords: Record<string, string> = {
  "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$":
    "1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit",
  "^[0-9]+(ms|s|m|h|d)$": "a whole number and a unit: ms, s, m, h or d (e.g. 500ms, 10s, 1m)",
  "^(\\*|[A-Za-z-]+(,[A-Za-z-]+)*) /[^\\s]*$": '"METHODS PATH", e.g. "GET /v1/**" or "* /v1/items/:id"',
  "^[a-z0-9][a-z0-9_-]{0,31}$":
    "1 to 32 lower-case letters, digits, '_' or '-', starting with a letter or digit",
  "^sha256:[0-9a-f]{64}$": "sha256: followed by 64 lower-case hex digits",
  "^[A-Za-z0-9_-]{1,200}$": "a nextCursor from a previous page",
  "^[A-Za-z][A-Za-z-]{0,31}$": "an HTTP method name, e.g. GET",
  "^/": "a path starting with /",
  "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$": "an HTTP header name",
  [NO_CONTROL_CHARS]: "text without control characters",
  [EXTERNAL_ID_PATTERN]: "1 to 200 visible ASCII characters, no spaces",
  [Scope.pattern as string]: 'a scope: 1 to 128 printable characters other than space, " and \\',
  [CredentialValue.pattern as string]: "printable ASCII text without spaces at either end",
  "^[^\\x00-\\x1f]+$": "a query parameter name without control characters",
  [INSTANT_PATTERN]:
    "an RFC 3339 date-time with an offset (2026-01-01T00:00:00Z) or epoch milliseconds (1767225600000)",
};

/** Words for a pattern, or undefined for one this file does not know (a test keeps that from shipping). */
export function wordsForPattern(pattern: string): string | undefined {
  return patternWords[pattern];
}

const oneOf = (values: unknown[]) =>
  values.length === 1 ? String(values[0]) : `one of ${values.map(String).join(", ")}`;

const listed = (names: string[]) =>
  names.length <= 1 ? names.join("") : `${names.slice(0, -1).join(", ")} and ${names.at(-1)}`;

function range(s: Schema, unit = ""): string {
  const min = s.minimum as number | undefined;
  const max = s.maximum as number | undefined;
  if (min !== undefined && max !== undefined) return ` from ${min} to ${max}${unit}`;
  if (min !== undefined) return ` of at least ${min}${unit}`;
  if (max !== undefined) return ` of at most ${max}${unit}`;
  return "";
}

/**
 * Elysia reads an integer query parameter through a union with a string variant (format "integer" or
 * "numeric"); the caller only needs to hear about the number.
 */
const isQueryNumberText = (s: Schema) =>
  s.type === "string" && (s.format === "integer" || s.format === "numeric");

/** What a schema accepts, as a noun phrase. */
export function expected(s: Schema): string {
  if (Array.isArray(s.enum)) return oneOf(s.enum);
  if ("const" in s) return JSON.stringify(s.const);
  if (Array.isArray(s.anyOf)) {
    const variants = (s.anyOf as Schema[]).filter((v) => !isQueryNumberText(v));
    if (variants.every((v) => "const" in v)) return oneOf(variants.map((v) => v.const));
    return [...new Set(variants.map(expected))].join(" or ");
  }
  switch (s.type) {
    case "null":
      return "null";
    case "boolean":
      return "true or false";
    case "integer":
      return `a whole number${range(s)}`;
    case "number":
      return `a number${range(s)}`;
    case "string":
      return text(s);
    case "array":
      return s.maxItems !== undefined ? `a list of at most ${s.maxItems} items` : "a list";
    case "object":
      return object(s);
  }
  return "a value of the documented form";
}

function text(s: Schema): string {
  if (s.format === "date-time") return "an RFC 3339 date-time (2026-01-01T00:00:00Z)";
  const lengths: string[] = [];
  if (typeof s.minLength === "number" && s.minLength > 0) lengths.push(`at least ${s.minLength}`);
  if (typeof s.maxLength === "number") lengths.push(`at most ${s.maxLength}`);
  const length = lengths.length ? `${lengths.join(" and ")} characters` : "";
  const pattern = typeof s.pattern === "string" ? s.pattern : undefined;
  if (pattern === undefined || pattern === NO_CONTROL_CHARS) {
    const plain = length ? `text of ${length}` : "text";
    return pattern === undefined ? plain : `${plain} without control characters`;
  }
  const words = wordsForPattern(pattern) ?? "text of the documented form";
  return length ? `${words} (${length})` : words;
}

function object(s: Schema): string {
  const required = (s.required as string[] | undefined) ?? [];
  if (required.length) return `an object with ${listed(required)}`;
  if (s.patternProperties) return "an object of names to text";
  return "an object";
}

/** `limits[0].window` from `/limits/0/window`. */
export function fieldName(pointer: string): string {
  let out = "";
  for (const raw of pointer.split("/").slice(1)) {
    const part = sanitize(raw.replaceAll("~1", "/").replaceAll("~0", "~"));
    out += /^[0-9]+$/.test(part) ? `[${part}]` : out ? `.${part}` : part;
  }
  return out;
}

/**
 * One sentence per field (the first failure at each place; a missing field also fails its type, a
 * union its variants), at most `max` of them.
 */
export function describeErrors(
  errors: Iterable<Pick<ValueError, "type" | "path" | "schema">>,
  subject: (field: string) => string,
  max = 10,
): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    if (seen.has(e.path)) continue;
    seen.add(e.path);
    out.push(describe(e, subject));
    if (out.length >= max) break;
  }
  return out;
}

function describe(e: Pick<ValueError, "type" | "path" | "schema">, subject: (field: string) => string) {
  const schema = e.schema as Schema;
  const name = fieldName(e.path);
  switch (e.type) {
    case ValueErrorType.ObjectRequiredProperty:
      return `${subject(name)} is required`;
    case ValueErrorType.ObjectAdditionalProperties: {
      const parent = fieldName(e.path.slice(0, e.path.lastIndexOf("/")));
      const key = name.slice(parent.length).replace(/^\./, "");
      const allowed = Object.keys((schema.properties as Schema | undefined) ?? {});
      if (allowed.length === 0) {
        const keyPattern = Object.keys((schema.patternProperties as Schema | undefined) ?? {})[0];
        const words = keyPattern === undefined ? undefined : wordsForPattern(keyPattern);
        return `${subject(parent)} has the name "${key}", which is not allowed: names there must be ${words ?? "one of the documented ones"}`;
      }
      const guess = closest(key, allowed);
      return `${subject(name)} is not allowed here (${guess ? `did you mean ${guess}? ` : ""}allowed: ${allowed.join(", ")})`;
    }
    case ValueErrorType.ObjectMinProperties:
      return schema.properties
        ? `${subject(name)} must name at least one of ${Object.keys(schema.properties as Schema).join(", ")}`
        : `${subject(name)} must have at least ${schema.minProperties} entries`;
    case ValueErrorType.ObjectMaxProperties:
      return `${subject(name)} may have at most ${schema.maxProperties} entries`;
    case ValueErrorType.ArrayMaxItems:
      return `${subject(name)} may have at most ${schema.maxItems} items`;
    default:
      return `${subject(name)} must be ${expected(schema)}`;
  }
}
