/**
 * TypeBox validation turned into messages a person can act on: one issue per real problem, with the
 * union branch the author evidently meant, and hints for unknown keys and malformed values.
 */
import type { TSchema } from "@sinclair/typebox";
import { FormatRegistry } from "@sinclair/typebox";
import { type TypeCheck, TypeCompiler } from "@sinclair/typebox/compiler";
import { type ValueError, ValueErrorType } from "@sinclair/typebox/errors";
import { Value } from "@sinclair/typebox/value";
import { closest } from "../lib/closest.ts";
import { gatewayConfigCheck } from "./gateway-check.gen.ts";
import { GatewayConfig } from "./schema.ts";
import { type ShowValue, showWritten } from "./show-value.ts";

FormatRegistry.Set(
  "date-time",
  (v) =>
    /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$/.test(v) && !Number.isNaN(Date.parse(v)),
);

export interface SchemaIssue {
  path: (string | number)[];
  /** Point at the key itself rather than its value (unknown keys). */
  atKey: boolean;
  message: string;
  hint?: string;
}

const patternHints: Record<string, string> = {
  "^[0-9]+(ms|s|m|h|d)$": "write a whole number and a unit: ms, s, m, h or d (e.g. 500ms, 10s, 1m)",
  "^[0-9]+([kKmMgG]?[bB])$": "write a whole number and a unit: b, kb, mb or gb (e.g. 10mb)",
  "^(\\[[0-9a-fA-F:.]+\\]|[A-Za-z0-9.-]+):[0-9]{1,5}$": "write HOST:PORT, e.g. 127.0.0.1:8080",
  "^(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*)$":
    "write a host name or IP address alone, without scheme, port or trailing dot, e.g. gatehouse.internal",
  "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$":
    "use letters, digits, '_', '.' and '-', starting with a letter or digit",
  "^(\\*|[A-Za-z-]+(,[A-Za-z-]+)*) /[^\\s]*$": 'write "METHODS PATH", e.g. "GET /v1/**" or "* /v1/items/:id"',
  "^https?://[^\\s]+$": "write an http:// or https:// URL",
  "^postgres(ql)?://[^\\s]+$":
    "write a postgres:// URL, e.g. postgres://gatehouse@db.internal:5432/gatehouse",
  "^sha256:[0-9a-f]{64}$": "write sha256: followed by 64 lower-case hex digits",
  "^[a-z0-9][a-z0-9_-]{0,31}$": "use lower-case letters, digits, '_' and '-'",
};

type Check = (value: unknown) => boolean;

/** TypeBox's format hook for compiled checks: the FormatRegistry's checker for a format name. */
const formatCheck = (name: string, value: string) => FormatRegistry.Get(name)?.(value) ?? false;
const unsupported = () => {
  throw new Error("a compiled check asked for a custom kind or a hash, which no schema here uses");
};

/**
 * Compiled checks by schema. gateway.yaml's is compiled ahead of time (`npm run gen`): generating and
 * evaluating it cost every start, reload and `validate` several milliseconds. Others compile on first use.
 */
const compiled = new WeakMap<TSchema, Check>([
  [GatewayConfig, gatewayConfigCheck(unsupported, formatCheck, unsupported) as Check],
]);

/** The schema's compiled check, compiled once. */
export function compiledCheck(schema: TSchema): Check {
  let check = compiled.get(schema);
  if (!check) {
    const typeCheck: TypeCheck<TSchema> = TypeCompiler.Compile(schema);
    check = (v) => typeCheck.Check(v);
    compiled.set(schema, check);
  }
  return check;
}

export function validateSchema(
  schema: TSchema,
  value: unknown,
  show: ShowValue = showWritten,
): SchemaIssue[] {
  // The compiled check is fast; the error walk, which explains, runs only when there is something to explain.
  if (compiledCheck(schema)(value)) return [];
  const issues: SchemaIssue[] = [];
  const seen = new Set<string>();
  const visit = (errors: Iterable<ValueError>) => {
    for (const e of errors) {
      if (e.type === ValueErrorType.Union && e.errors.length > 0) {
        const branch = chooseBranch(e, value);
        if (branch) visit(branch);
        else issues.push(unionIssue(e, value, show));
        continue;
      }
      // A missing key also fails its type check; the "missing required key" issue says it all.
      if (e.value === undefined && e.type !== ValueErrorType.ObjectRequiredProperty) continue;
      const issue = toIssue(e, show);
      const id = `${issue.path.join("/")}`;
      // One message per place: a missing key also fails its type check, and so on.
      if (seen.has(id)) continue;
      seen.add(id);
      issues.push(issue);
    }
  };
  visit(Value.Errors(schema, value));
  return issues;
}

/**
 * The branch the author evidently meant: the one whose required keys are all present, else the one
 * with the fewest errors among objects that at least carry one of a branch's keys. Null when the
 * value matches no branch's shape at all.
 */
function chooseBranch(e: ValueError, root: unknown): ValueError[] | null {
  const target = lookup(root, splitPointer(e.path));
  const variants = (e.schema.anyOf ?? []) as TSchema[];
  if (!isObject(target)) return null;
  const branches = e.errors.map((it) => [...it]);
  let best: ValueError[] | null = null;
  let bestScore = Number.POSITIVE_INFINITY;
  branches.forEach((errs, i) => {
    const required: string[] = variants[i]?.required ?? [];
    const present = required.filter((k) => k in target).length;
    if (present === 0) return;
    const score = (present === required.length ? 0 : 1000) + errs.length;
    if (score < bestScore) {
      bestScore = score;
      best = errs;
    }
  });
  return best;
}

function unionIssue(e: ValueError, root: unknown, show: ShowValue): SchemaIssue {
  const variants = (e.schema.anyOf ?? []) as TSchema[];
  const target = lookup(root, splitPointer(e.path));
  const keys = [...new Set(variants.flatMap((v) => (v.required as string[] | undefined) ?? []))];
  const path = splitPointer(e.path);
  const allowed = variants.filter((v) => typeof v.const === "string").map((v) => v.const as string);
  if (allowed.length > 0 && !isObject(target)) return closedSetIssue(path, target, allowed, variants, show);
  if (!isObject(target) || keys.length === 0) {
    return {
      path,
      atKey: false,
      message: `expected ${keys.length ? "a mapping" : "one of the allowed forms"}, got ${describe(target, path, show)}`,
    };
  }
  const known = new Set(variants.flatMap((v) => Object.keys((v.properties as object | undefined) ?? {})));
  const unknown = Object.keys(target).filter((k) => !known.has(k));
  const guess = unknown.map((k) => closest(k, keys)).find(Boolean);
  return {
    path,
    atKey: false,
    message: `expected one of the keys ${keys.map((k) => `"${k}"`).join(" or ")}`,
    hint: guess
      ? `did you mean "${guess}"?`
      : unknown.length
        ? `"${unknown[0]}" is not a key here`
        : undefined,
  };
}

/** A value outside a closed set of words (period, by, mock, synchronous...): the hint lists them. */
function closedSetIssue(
  path: (string | number)[],
  target: unknown,
  allowed: string[],
  variants: TSchema[],
  show: ShowValue,
): SchemaIssue {
  const orMapping = variants.some((v) => v.type === "object") ? ", or a mapping" : "";
  // A guess would hint at a value from the environment.
  const guess = typeof target === "string" && !show.fromEnv(path) ? closest(target, allowed) : undefined;
  const list = `${allowed.map((a) => `"${a}"`).join(", ")}${orMapping}`;
  return {
    path,
    atKey: false,
    message: `${typeof target === "string" ? show(path, target) : describe(target, path, show)} is not allowed here`,
    hint: guess ? `did you mean "${guess}"? (one of ${list})` : `use one of ${list}`,
  };
}

function toIssue(e: ValueError, show: ShowValue): SchemaIssue {
  const path = splitPointer(e.path);
  const last = path.at(-1);
  switch (e.type) {
    case ValueErrorType.ObjectAdditionalProperties: {
      const parentSchema = e.schema as TSchema;
      const allowed = Object.keys(parentSchema.properties ?? {});
      const guess = closest(String(last), allowed);
      return {
        path,
        atKey: true,
        message: `unknown key "${String(last)}"`,
        hint: guess
          ? `did you mean "${guess}"?`
          : allowed.length
            ? `allowed keys here: ${allowed.join(", ")}`
            : "remove it",
      };
    }
    case ValueErrorType.ObjectRequiredProperty:
      return { path: path.slice(0, -1), atKey: false, message: `missing required key "${String(last)}"` };
    case ValueErrorType.StringPattern:
      return {
        path,
        atKey: false,
        message: `${show(path, e.value)} is not valid here`,
        hint: patternHints[e.schema.pattern as string],
      };
    case ValueErrorType.Literal:
      return { path, atKey: false, message: `expected ${JSON.stringify(e.schema.const)}` };
    case ValueErrorType.StringFormat:
      return {
        path,
        atKey: false,
        message: `${show(path, e.value)} is not a valid ${e.schema.format}`,
        hint:
          e.schema.format === "date-time" ? "write an RFC 3339 time, e.g. 2027-01-31T00:00:00Z" : undefined,
      };
    case ValueErrorType.NumberMinimum:
    case ValueErrorType.IntegerMinimum:
      return { path, atKey: false, message: `must be at least ${e.schema.minimum}` };
    case ValueErrorType.NumberMaximum:
    case ValueErrorType.IntegerMaximum:
      return { path, atKey: false, message: `must be at most ${e.schema.maximum}` };
    case ValueErrorType.StringMinLength:
      return { path, atKey: false, message: `must be at least ${e.schema.minLength} characters` };
    case ValueErrorType.StringMaxLength:
      return { path, atKey: false, message: `must be at most ${e.schema.maxLength} characters` };
    case ValueErrorType.ObjectMaxProperties:
      return { path, atKey: false, message: `must have at most ${e.schema.maxProperties} entries` };
    default:
      return {
        path,
        atKey: false,
        message: `${lowerFirst(e.message)}, got ${describe(e.value, path, show)}`,
      };
  }
}

function describe(v: unknown, path: (string | number)[], show: ShowValue): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  if (typeof v === "string")
    return show.fromEnv(path) ? `${show(path, v)} (a string)` : `string ${JSON.stringify(v)}`;
  return `${typeof v} ${String(v)}`;
}

const lowerFirst = (s: string) => s.charAt(0).toLowerCase() + s.slice(1);

function splitPointer(pointer: string): (string | number)[] {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split("/")
    .map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"))
    .map((p) => (/^\d+$/.test(p) ? Number(p) : p));
}

function lookup(root: unknown, path: (string | number)[]): unknown {
  let v: unknown = root;
  for (const p of path)
    v = isObject(v) || Array.isArray(v) ? (v as Record<string | number, unknown>)[p] : undefined;
  return v;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);
