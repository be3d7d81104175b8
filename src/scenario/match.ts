/**
 * Expectations against what actually came back. Each mismatch is one Failure naming where, what was
 * expected and what was seen, so the report can show a diff per failed expectation.
 */
import { problemType } from "../gateway/problem.ts";
import type { AdminExpectation, ResponseExpectation, TextMatch, UsageGroupExpectation } from "./schema.ts";

export interface Failure {
  /** Where: "status", "header retry-after", "json.items[0].id", "upstream.headers.authorization". */
  readonly at: string;
  readonly expected: string;
  readonly actual: string;
}

/** What a request to the data plane came back with. */
export interface Observed {
  status: number;
  headers: Headers;
  text: string;
  /** False when the body broke off before its end. */
  complete: boolean;
  /**
   * What the upstream received: null when nothing reached one, undefined when it cannot be known
   * (a run against --target).
   */
  upstream?: { method: string; pathAndQuery: string; headers: Headers } | null;
}

const MAX_SHOWN = 200;

/** A value as the report shows it: JSON, cut short. */
export function show(v: unknown): string {
  const text = v === undefined ? "(nothing)" : typeof v === "string" ? JSON.stringify(v) : JSON.stringify(v);
  return text.length > MAX_SHOWN ? `${text.slice(0, MAX_SHOWN)}…` : text;
}

export function textMatches(m: TextMatch, actual: string): boolean {
  if (typeof m === "string") return actual === m;
  if ("contains" in m) return actual.includes(m.contains);
  return new RegExp(m.matches).test(actual);
}

function describeMatch(m: TextMatch): string {
  if (typeof m === "string") return show(m);
  if ("contains" in m) return `text containing ${show(m.contains)}`;
  return `text matching /${m.matches}/`;
}

function checkHeaders(
  expected: Record<string, TextMatch | null>,
  actual: Headers,
  prefix: string,
  out: Failure[],
): void {
  for (const [name, m] of Object.entries(expected)) {
    const value = actual.get(name);
    const at = `${prefix}${name.toLowerCase()}`;
    if (m === null) {
      if (value !== null) out.push({ at, expected: "(absent)", actual: show(value) });
    } else if (value === null) out.push({ at, expected: describeMatch(m), actual: "(absent)" });
    else if (!textMatches(m, value)) out.push({ at, expected: describeMatch(m), actual: show(value) });
  }
}

/** Every key of `expected` found in `actual` with a matching value; lists element by element. */
export function checkSubset(expected: unknown, actual: unknown, at: string, out: Failure[]): void {
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) {
      out.push({ at, expected: `a list of ${expected.length}`, actual: show(actual) });
      return;
    }
    if (actual.length !== expected.length) {
      out.push({ at: `${at}.length`, expected: String(expected.length), actual: String(actual.length) });
    }
    expected.forEach((e, i) => {
      checkSubset(e, actual[i], `${at}[${i}]`, out);
    });
    return;
  }
  if (expected !== null && typeof expected === "object") {
    if (actual === null || typeof actual !== "object" || Array.isArray(actual)) {
      out.push({ at, expected: "an object", actual: show(actual) });
      return;
    }
    for (const [k, v] of Object.entries(expected)) {
      checkSubset(v, (actual as Record<string, unknown>)[k], `${at}.${k}`, out);
    }
    return;
  }
  if (!Object.is(expected, actual)) out.push({ at, expected: show(expected), actual: show(actual) });
}

function checkJson(expected: unknown, text: string, out: Failure[]): void {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    out.push({ at: "json", expected: "a JSON body", actual: show(text) });
    return;
  }
  checkSubset(expected, parsed, "json", out);
}

function checkProblem(code: string, text: string, out: Failure[]): void {
  const want = code.startsWith("urn:") ? code : problemType(code.replace(/-/g, "_"));
  let type: unknown;
  try {
    type = (JSON.parse(text) as { type?: unknown }).type;
  } catch {
    type = undefined;
  }
  if (type !== want) out.push({ at: "problem", expected: show(want), actual: show(type ?? text) });
}

export function checkResponse(e: ResponseExpectation, seen: Observed): Failure[] {
  const out: Failure[] = [];
  if (e.status !== undefined && e.status !== seen.status) {
    out.push({ at: "status", expected: String(e.status), actual: String(seen.status) });
  }
  if (e.problem !== undefined) checkProblem(e.problem, seen.text, out);
  if (e.headers) checkHeaders(e.headers, seen.headers, "header ", out);
  if (e.json !== undefined) checkJson(e.json, seen.text, out);
  if (e.text !== undefined && !textMatches(e.text, seen.text)) {
    out.push({ at: "text", expected: describeMatch(e.text), actual: show(seen.text) });
  }
  if (e.complete !== undefined && e.complete !== seen.complete) {
    out.push({
      at: "complete",
      expected: e.complete ? "the whole body" : "a body that breaks off",
      actual: seen.complete ? "the whole body" : `a body that broke off after ${show(seen.text)}`,
    });
  }
  if (e.upstream) {
    const u = e.upstream;
    if (seen.upstream === undefined) {
      out.push({
        at: "upstream",
        expected: "what the upstream received",
        actual: "(unknown: run the scenario in-process, not against --target)",
      });
    } else if (seen.upstream === null) {
      if (u.received) out.push({ at: "upstream.received", expected: "true", actual: "false" });
    } else {
      if (!u.received) out.push({ at: "upstream.received", expected: "false", actual: "true" });
      const { method, pathAndQuery, headers } = seen.upstream;
      const q = pathAndQuery.indexOf("?");
      const path = q < 0 ? pathAndQuery : pathAndQuery.slice(0, q);
      const query = q < 0 ? "" : pathAndQuery.slice(q + 1);
      if (u.method !== undefined && u.method !== method) {
        out.push({ at: "upstream.method", expected: u.method, actual: method });
      }
      if (u.path !== undefined && u.path !== path)
        out.push({ at: "upstream.path", expected: show(u.path), actual: show(path) });
      if (u.query !== undefined && u.query !== query) {
        out.push({ at: "upstream.query", expected: show(u.query), actual: show(query) });
      }
      if (u.headers) checkHeaders(u.headers, headers, "upstream.headers.", out);
    }
  }
  return out;
}

export function checkAdmin(
  e: AdminExpectation | undefined,
  seen: Observed,
  defaultStatus?: number,
): Failure[] {
  const out: Failure[] = [];
  const status = e?.status ?? defaultStatus;
  if (status !== undefined) {
    if (status !== seen.status)
      out.push({ at: "status", expected: String(status), actual: String(seen.status) });
  } else if (seen.status < 200 || seen.status > 299) {
    out.push({ at: "status", expected: "2xx", actual: `${seen.status} ${show(seen.text)}` });
  }
  if (e?.problem !== undefined) checkProblem(e.problem, seen.text, out);
  if (e?.headers) checkHeaders(e.headers, seen.headers, "header ", out);
  if (e?.json !== undefined) checkJson(e.json, seen.text, out);
  if (e?.text !== undefined && !textMatches(e.text, seen.text)) {
    out.push({ at: "text", expected: describeMatch(e.text), actual: show(seen.text) });
  }
  return out;
}

export function checkUsage(
  expected: { groups?: UsageGroupExpectation[] | undefined; total?: UsageGroupExpectation | undefined },
  report: unknown,
): Failure[] {
  const out: Failure[] = [];
  const r = report as { groups?: unknown; total?: unknown };
  if (expected.groups) checkSubset(expected.groups, r.groups, "groups", out);
  if (expected.total) checkSubset(expected.total, r.total, "total", out);
  return out;
}
