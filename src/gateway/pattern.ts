/**
 * `METHODS PATH` patterns for routes and rules. Matching is on whole segments of the canonical
 * path: a literal matches itself, `:name` and `*` any one non-empty segment, a final `**` any number
 * of segments (zero included, so `/v1/**` matches `/v1`).
 */

import { closest } from "../lib/closest.ts";
import { foldCase } from "./canonical-path.ts";
import { HTTP_METHODS, NEVER_FORWARDED } from "./http-methods.ts";

type Segment =
  | { kind: "literal"; value: string }
  | { kind: "param"; name: string }
  | { kind: "star" }
  | { kind: "globstar" };

/** Higher is more specific. `end` is what a pattern that has run out of segments ranks. */
const rankOf = { literal: 5, param: 4, star: 3, end: 2, globstar: 1 } as const;

export interface PathPattern {
  readonly text: string;
  /** Upper-case methods, or null for `*`. */
  readonly methods: ReadonlySet<string> | null;
  readonly segments: readonly Segment[];
  readonly globstar: boolean;
  /** Per-segment specificity, compared lexicographically; see compareSpecificity. */
  readonly rank: readonly number[];
}

/**
 * Why a pattern was refused. `message` may quote the offending part; `summary` never does, for
 * patterns whose text came from the environment and must not be echoed.
 */
export class PatternError extends Error {
  readonly summary: string;
  readonly hint?: string;
  constructor(message: string, details: { summary?: string; hint?: string } = {}) {
    super(message);
    this.summary = details.summary ?? message;
    this.hint = details.hint;
  }
}

const paramName = /^:[A-Za-z_][A-Za-z0-9_]*$/;
// The characters a canonical path segment holds as they are. Request parsing percent-encodes the
// others (space, ", <, >, ^, `, {, }, controls, non-ASCII), reads \ as / and ends the path at ? or
// #, and the canonicalizer refuses ;. Patterns do not spell percent-escapes.
const literalSegment = /^[A-Za-z0-9\-._~!$&'()+,=:@[\]|]+$/;

/**
 * `lenient`: the pattern of a deny rule, whose literals are matched against the request's lenient
 * segments (percent-decoded, case-folded): there a literal may hold characters that only arrive
 * percent-encoded (non-ASCII, space, `"`, `{`, ...), since decoding brings them back.
 */
export function parsePattern(text: string, { lenient = false }: { lenient?: boolean } = {}): PathPattern {
  const space = text.indexOf(" ");
  if (space < 0) throw new PatternError('expected "METHODS PATH", e.g. "GET /v1/**"');
  const methodPart = text.slice(0, space);
  const path = text.slice(space + 1);
  let methods: Set<string> | null = null;
  if (methodPart !== "*") {
    methods = new Set();
    for (const m of methodPart.split(",")) {
      checkMethod(m);
      methods.add(m);
    }
  }
  if (!path.startsWith("/")) throw new PatternError("the path must start with /");
  const parts = path === "/" ? [] : path.slice(1).split("/");
  const segments: Segment[] = [];
  parts.forEach((p, i) => {
    if (p === "") throw new PatternError("empty path segment (//, or a trailing /)");
    if (p === "**") {
      if (i !== parts.length - 1) throw new PatternError("** is only allowed as the last segment");
      segments.push({ kind: "globstar" });
    } else if (p === "*") segments.push({ kind: "star" });
    else if (p.startsWith(":")) {
      if (!paramName.test(p))
        throw new PatternError(`"${p}" is not a valid :name segment`, {
          summary: "a :name segment is not valid",
          hint: ":name is letters, digits and _, not starting with a digit",
        });
      segments.push({ kind: "param", name: p.slice(1) });
    } else {
      if (p.includes("*"))
        throw new PatternError(`"${p}": * only stands alone as a whole segment`, {
          summary: "* only stands alone as a whole segment",
        });
      const why = neverCanonical(p, lenient);
      if (why) {
        throw new PatternError(`"${p}" can never match a canonical path segment: ${why}`, {
          summary: "a literal segment can never match a canonical path segment",
          hint: "match such a segment with :name or *",
        });
      }
      segments.push({ kind: "literal", value: p });
    }
  });
  const globstar = segments.at(-1)?.kind === "globstar";
  return { text, methods, segments, globstar, rank: segments.map((s) => rankOf[s.kind]) };
}

/** Only registered methods, in upper case as they arrive: an unknown one would never match. */
function checkMethod(m: string): void {
  const upper = m.toUpperCase();
  if (m !== upper && HTTP_METHODS.includes(upper)) {
    throw new PatternError(`methods are upper case: write ${upper}`, {
      summary: "methods are upper case",
    });
  }
  if (!HTTP_METHODS.includes(m)) {
    const guess = closest(upper, HTTP_METHODS);
    throw new PatternError(`"${m}" is not an HTTP method`, {
      summary: "it names an unknown HTTP method",
      hint: guess
        ? `did you mean "${guess}"?`
        : "name methods of the IANA registry in upper case, e.g. GET,HEAD or POST",
    });
  }
  if (NEVER_FORWARDED.includes(m)) {
    throw new PatternError(`gatehouse never forwards ${m} requests, so this pattern could never match`, {
      summary: `it names ${m}, which gatehouse never forwards`,
      hint: `remove ${m} from the pattern`,
    });
  }
}

/**
 * Why a literal segment can never equal a segment of a canonical path (or, `lenient`, of its decoded
 * reading), or undefined if it can.
 */
function neverCanonical(p: string, lenient: boolean): string | undefined {
  if (p === "." || p === "..") return "dot segments are resolved before matching";
  if (literalSegment.test(p)) return undefined;
  const c = [...p].find((ch) => !literalSegment.test(ch) && !(lenient && decodesTo(ch)))!;
  if (c === undefined) return undefined;
  const code = c.codePointAt(0)!;
  if (code > 0x7f) return "non-ASCII characters arrive percent-encoded";
  if (code <= 0x20 || code === 0x7f) return "spaces and control characters arrive percent-encoded";
  if (c === "%") return "patterns cannot spell percent-escapes";
  if (c === ";") return "paths with ; are refused";
  if (c === "?" || c === "#") return `${c} ends the path`;
  if (c === "\\") return "\\ is read as /";
  return `${JSON.stringify(c)} arrives percent-encoded`;
}

/** Characters that arrive percent-encoded but that a deny's decoded reading of the path holds. */
const decodesTo = (ch: string) => {
  const code = ch.codePointAt(0)!;
  return code > 0x9f || code === 0x20 || '"<>^`{}'.includes(ch);
};

export function matchesPath(p: PathPattern, segments: readonly string[]): boolean {
  const fixed = p.globstar ? p.segments.length - 1 : p.segments.length;
  if (p.globstar ? segments.length < fixed : segments.length !== fixed) return false;
  for (let i = 0; i < fixed; i++) {
    const s = p.segments[i]!;
    const v = segments[i]!;
    if (s.kind === "literal") {
      if (s.value !== v) return false;
    } else if (v === "") return false;
  }
  return true;
}

export function matches(p: PathPattern, method: string, segments: readonly string[]): boolean {
  return (p.methods === null || p.methods.has(method)) && matchesPath(p, segments);
}

/** `p` with its literals case-folded, to match lenient segments (see canonical-path.ts) with. */
export function foldedPattern(p: PathPattern): PathPattern {
  const segments = p.segments.map((s) => (s.kind === "literal" ? { ...s, value: foldCase(s.value) } : s));
  return { ...p, segments };
}

/**
 * Negative when `a` is more specific than `b`. Segments compare left to right (literal > :param >
 * * > end of pattern > **); then an explicit method list beats `*`.
 */
export function compareSpecificity(a: PathPattern, b: PathPattern): number {
  const n = Math.max(a.rank.length, b.rank.length);
  for (let i = 0; i < n; i++) {
    const ra = a.rank[i] ?? rankOf.end;
    const rb = b.rank[i] ?? rankOf.end;
    if (ra !== rb) return rb - ra;
  }
  return (a.methods === null ? 1 : 0) - (b.methods === null ? 1 : 0);
}

/** True when every request `b` matches is also matched by `a`. */
export function covers(a: PathPattern, b: PathPattern): boolean {
  if (a.methods !== null && (b.methods === null || [...b.methods].some((m) => !a.methods!.has(m))))
    return false;
  const fixedA = a.globstar ? a.segments.length - 1 : a.segments.length;
  if (!a.globstar && (b.globstar || b.segments.length !== a.segments.length)) return false;
  const fixedB = b.globstar ? b.segments.length - 1 : b.segments.length;
  if (fixedB < fixedA) return false;
  for (let i = 0; i < fixedA; i++) {
    const sa = a.segments[i]!;
    const sb = b.segments[i]!;
    if (sa.kind === "literal" && (sb.kind !== "literal" || sb.value !== sa.value)) return false;
  }
  return true;
}
