/**
 * `METHODS PATH` patterns for routes and rules. Matching is on whole segments of the canonical
 * path: a literal matches itself, `:name` and `*` any one non-empty segment, a final `**` any number
 * of segments (zero included, so `/v1/**` matches `/v1`).
 */

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

export class PatternError extends Error {}

const methodToken = /^[A-Z]+$/;
const paramName = /^:[A-Za-z_][A-Za-z0-9_]*$/;
// A literal segment is compared against the canonical path, whose segments never hold these.
const literalForbidden = /[\s?#\\%]/;

export function parsePattern(text: string): PathPattern {
  const space = text.indexOf(" ");
  if (space < 0) throw new PatternError('expected "METHODS PATH", e.g. "GET /v1/**"');
  const methodPart = text.slice(0, space);
  const path = text.slice(space + 1);
  let methods: Set<string> | null = null;
  if (methodPart !== "*") {
    methods = new Set();
    for (const m of methodPart.split(",")) {
      if (!methodToken.test(m))
        throw new PatternError(`"${m}" is not an HTTP method; use upper case, e.g. GET`);
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
      if (!paramName.test(p)) throw new PatternError(`"${p}" is not a valid :name segment`);
      segments.push({ kind: "param", name: p.slice(1) });
    } else {
      if (p.includes("*")) throw new PatternError(`"${p}": * only stands alone as a whole segment`);
      if (p === "." || p === ".." || literalForbidden.test(p)) {
        throw new PatternError(`"${p}" can never match a canonical path segment`);
      }
      segments.push({ kind: "literal", value: p });
    }
  });
  const globstar = segments.at(-1)?.kind === "globstar";
  return { text, methods, segments, globstar, rank: segments.map((s) => rankOf[s.kind]) };
}

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
