/**
 * Header and query-parameter tests on rules (`headers:` and `query:` beside `allow`/`deny`).
 *
 * Like paths, headers and query strings have more than one reading, and the upstream's may not be
 * ours: a repeated parameter is read first, last, or joined with commas; `;` separates parameters for
 * some servers; names are matched case-insensitively by some frameworks, and PHP reads `a.b`, `a b`
 * and `a[]` as `a_b`, `a_b` and `a`; `+` is a space for some decoders and a plus for others, and a
 * value may be decoded twice; CGI servers read `X_Debug` as `X-Debug`; a repeated header reaches the
 * upstream joined with commas. So a deny matches when ANY reading matches (values trimmed and
 * compared in any case), and an allow only when the exact name is present and EVERY reading equals a
 * value as written: an allow can refuse more than the upstream would, never let more through.
 */
import type { PredicateDecl } from "../config/schema.ts";
import { foldCase } from "./canonical-path.ts";

export interface RequestPredicate {
  readonly where: "header" | "query";
  /** A header's name in lower case with `_` read as `-`; a query parameter's as written. */
  readonly name: string;
  /** The accepted values, or null for "present with any value". */
  readonly values: readonly string[] | null;
  /** What a deny compares with: the values trimmed and case-folded. */
  readonly folded: readonly string[] | null;
  /** What a deny compares names with: see `nameReadings`. */
  readonly looseName: string;
}

/** The rule's header and query tests, compiled once per snapshot. */
export function compilePredicates(
  headers: Record<string, PredicateDecl> | undefined,
  query: Record<string, PredicateDecl> | undefined,
): RequestPredicate[] {
  const out: RequestPredicate[] = [];
  for (const [name, p] of Object.entries(headers ?? {})) out.push(compile("header", dashed(name), p));
  for (const [name, p] of Object.entries(query ?? {})) out.push(compile("query", name, p));
  return out;
}

function compile(where: "header" | "query", name: string, p: PredicateDecl): RequestPredicate {
  const values = "equals" in p ? [p.equals] : "oneOf" in p ? p.oneOf : null;
  return {
    where,
    name,
    values,
    folded: values?.map((v) => foldCase(v.trim())) ?? null,
    looseName: where === "header" ? name : looseName(name),
  };
}

/** Whether every predicate holds: `lenient` for a deny (any reading), else as an allow (every reading). */
export function predicatesHold(
  predicates: readonly RequestPredicate[],
  lenient: boolean,
  headers: Headers,
  query: string,
): boolean {
  for (const p of predicates) {
    const holds =
      p.where === "header"
        ? lenient
          ? headerAnyReading(p, headers)
          : headerEveryReading(p, headers)
        : lenient
          ? queryAnyReading(p, query)
          : queryEveryReading(p, query);
    if (!holds) return false;
  }
  return true;
}

/** CGI, PHP, WSGI and Rack servers read `X_Debug` as `X-Debug`. */
const dashed = (name: string) => name.toLowerCase().replaceAll("_", "-");

/** A deny: some header spelled like the name, its whole value or one comma-separated part matching. */
function headerAnyReading(p: RequestPredicate, headers: Headers): boolean {
  for (const [name, value] of headers) {
    if (dashed(name) !== p.name) continue;
    if (p.folded === null) return true;
    if (p.folded.includes(foldCase(value.trim()))) return true;
    if (value.includes(",") && value.split(",").some((part) => p.folded!.includes(foldCase(part.trim())))) {
      return true;
    }
  }
  return false;
}

/**
 * An allow: the exact name present, and every header spelled like it carrying an accepted value as a
 * whole (a repeated header arrives joined with ", ", which is no single accepted value).
 */
function headerEveryReading(p: RequestPredicate, headers: Headers): boolean {
  if (!headers.has(p.name)) return false;
  for (const [name, value] of headers) {
    if (dashed(name) !== p.name) continue;
    if (p.values !== null && !p.values.includes(value)) return false;
  }
  return true;
}

interface Param {
  readonly name: string;
  /** Null when the part had no `=`. */
  readonly value: string | null;
}

/** Parameters as servers split them: on `&`, and also on `;` (older CGI and Perl servers, some Java). */
function params(query: string): Param[] {
  if (query === "") return [];
  const parts = query.split("&");
  if (query.includes(";")) for (const part of parts) if (part.includes(";")) parts.push(...part.split(";"));
  const out: Param[] = [];
  for (const part of parts) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    out.push(eq < 0 ? { name: part, value: null } : { name: part.slice(0, eq), value: part.slice(eq + 1) });
  }
  return out;
}

/**
 * A deny: some parameter whose name reads as the predicate's, with some reading of its value (raw,
 * decoded with or without `+` as space, decoded twice, or one comma-separated part) matching.
 */
function queryAnyReading(p: RequestPredicate, query: string): boolean {
  for (const param of params(query)) {
    if (!nameReadings(param.name).includes(p.looseName)) continue;
    if (p.folded === null) return true;
    for (const v of valueReadings(param.value ?? "")) if (p.folded.includes(foldCase(v.trim()))) return true;
  }
  return false;
}

/**
 * An allow: the exact (decoded) name present, split on `&` alone; and every parameter any server could
 * read as it, split either way, decoded once to an accepted value.
 */
function queryEveryReading(p: RequestPredicate, query: string): boolean {
  let present = false;
  for (const part of query.split("&")) {
    const eq = part.indexOf("=");
    if (decode(eq < 0 ? part : part.slice(0, eq), true) === p.name) present = true;
  }
  if (!present) return false;
  for (const param of params(query)) {
    if (!nameReadings(param.name).includes(p.looseName)) continue;
    if (p.values !== null && (param.value === null || !p.values.includes(decode(param.value, true)))) {
      return false;
    }
  }
  return true;
}

/** A parameter name as lenient servers read it: see `looseName`, after one or two decodings. */
function nameReadings(raw: string): string[] {
  const once = decode(raw, true);
  const twice = decode(once, true);
  return once === twice ? [looseName(once)] : [looseName(once), looseName(twice)];
}

/**
 * A decoded name in the form lenient servers compare: case-folded, cut at a NUL (C strings) and at
 * `[` (PHP and Rails read `admin[]` and `admin[x]` as `admin`), leading spaces dropped and `.` and
 * spaces read as `_` (PHP).
 */
function looseName(name: string): string {
  let n = name;
  const nul = n.indexOf("\0");
  if (nul >= 0) n = n.slice(0, nul);
  const bracket = n.indexOf("[");
  if (bracket > 0) n = n.slice(0, bracket);
  return foldCase(n.trimStart().replace(/[. ]/g, "_"));
}

/** Every value a server could read from a raw parameter value, comma-separated parts included. */
function valueReadings(raw: string): string[] {
  const plus = decode(raw, true);
  const readings = new Set([raw, plus, decode(raw, false), decode(plus, true)]);
  for (const r of [...readings]) if (r.includes(",")) for (const part of r.split(",")) readings.add(part);
  return [...readings];
}

/**
 * Percent-decodes once (`+` as a space when `plus`). Malformed escapes and bytes that are not UTF-8
 * do not stop the decoding: lenient decoders decode the escapes they can.
 */
function decode(s: string, plus: boolean): string {
  const t = plus && s.includes("+") ? s.replaceAll("+", " ") : s;
  if (!t.includes("%")) return t;
  try {
    return decodeURIComponent(t);
  } catch {
    const bytes: number[] = [];
    const utf8 = new TextEncoder();
    for (let i = 0; i < t.length; i++) {
      const hex = t[i] === "%" ? /^[0-9A-Fa-f]{2}$/.exec(t.slice(i + 1, i + 3)) : null;
      if (hex) {
        bytes.push(Number.parseInt(hex[0], 16));
        i += 2;
      } else bytes.push(...utf8.encode(t[i]!));
    }
    return new TextDecoder().decode(new Uint8Array(bytes));
  }
}
