import { describe, expect, test } from "bun:test";
import { canonicalize } from "../../src/gateway/canonical-path.ts";
import { HTTP_METHODS, NEVER_FORWARDED } from "../../src/gateway/http-methods.ts";
import {
  compareSpecificity,
  covers,
  foldedPattern,
  matches,
  PatternError,
  parsePattern,
} from "../../src/gateway/pattern.ts";

const segs = (path: string) => (path === "/" ? [] : path.slice(1).split("/"));
const m = (pattern: string, method: string, path: string) =>
  matches(parsePattern(pattern), method, segs(path));

describe("matching on whole segments", () => {
  test.each([
    ["GET /v1/items", "GET", "/v1/items", true],
    ["GET /v1/items", "GET", "/v1/items2", false],
    ["GET /v1/items", "GET", "/v1/items/1", false],
    ["GET /v1/items", "POST", "/v1/items", false],
    ["GET,POST /v1/items", "POST", "/v1/items", true],
    ["* /v1/items", "DELETE", "/v1/items", true],
    ["GET /v1/:id", "GET", "/v1/42", true],
    ["GET /v1/:id", "GET", "/v1/", false],
    ["GET /v1/*/x", "GET", "/v1/a/x", true],
    ["GET /v1/*/x", "GET", "/v1/a/b/x", false],
    ["GET /v1/**", "GET", "/v1", true],
    ["GET /v1/**", "GET", "/v1/a/b/c", true],
    ["GET /v1/**", "GET", "/v10/a", false],
    ["GET /**", "GET", "/", true],
    ["GET /", "GET", "/", true],
  ])("%s ~ %s %s → %p", (pattern, method, path, want) => {
    expect(m(pattern, method, path)).toBe(want);
  });

  test.each([
    ["GET", 'expected "METHODS PATH"'],
    ["get /x", "methods are upper case: write GET"],
    ["GET,Post /x", "methods are upper case: write POST"],
    ["DELTE /x", '"DELTE" is not an HTTP method'],
    ["GET,FETCH /x", '"FETCH" is not an HTTP method'],
    ["TRACE /x", "never forwards TRACE"],
    ["GET,CONNECT /x", "never forwards CONNECT"],
    ["GET x", "must start with /"],
    ["GET /a//b", "empty path segment"],
    ["GET /a/**/b", "only allowed as the last segment"],
    ["GET /a*", "only stands alone"],
    ["GET /a/../b", "can never match"],
    ["GET /a/%2e", "can never match"],
    ["GET /:1x", "not a valid :name"],
  ])("%s is rejected", (pattern, message) => {
    expect(() => parsePattern(pattern)).toThrow(PatternError);
    expect(() => parsePattern(pattern)).toThrow(message);
  });
});

describe("methods", () => {
  test("every registered method but CONNECT and TRACE may be named, alone or in a list", () => {
    const allowed = HTTP_METHODS.filter((m) => !NEVER_FORWARDED.includes(m));
    for (const m of allowed) expect([...parsePattern(`${m} /x`).methods!]).toEqual([m]);
    expect(parsePattern(`${allowed.join(",")} /x`).methods!.size).toBe(allowed.length);
    expect(m("VERSION-CONTROL,MKCALENDAR /x", "MKCALENDAR", "/x")).toBe(true);
  });

  test("a misspelled method says which one was meant; a stranger lists what is allowed", () => {
    const refusal = (pattern: string) => {
      try {
        parsePattern(pattern);
      } catch (err) {
        return err as PatternError;
      }
      throw new Error(`${pattern} was accepted`);
    };
    expect(refusal("DELTE /x").hint).toBe('did you mean "DELETE"?');
    expect(refusal("PTACH /x").hint).toBe('did you mean "PATCH"?');
    expect(refusal("delte /x").hint).toBe('did you mean "DELETE"?');
    expect(refusal("FROBNICATE /x").hint).toContain("IANA registry");
    // The summary never quotes the pattern: it is what a pattern from the environment is told.
    expect(refusal("DELTE /x").summary).not.toContain("DELTE");
  });
});

describe("literal segments a canonical path can hold", () => {
  // Every printable ASCII character and a few beyond, each inside a segment: a pattern accepts the
  // literal exactly when a request for that path has it, as written, among its canonical segments.
  const characters = [
    ...Array.from({ length: 0x7f - 0x21 }, (_, i) => String.fromCharCode(0x21 + i)),
    "\u00e9",
    "\u20ac",
    "\u{1f600}",
  ].filter((c) => c !== "/" && c !== "*");

  test.each(characters)("%s", (c) => {
    const literal = `a${c}b`;
    const canonical = canonicalize(new URL(`http://gateway/v1/${literal}`).href);
    const reachable = canonical.ok && canonical.segments.includes(literal);
    if (reachable) expect(m(`GET /v1/${literal}`, "GET", canonical.path)).toBe(true);
    else expect(() => parsePattern(`GET /v1/${literal}`)).toThrow("can never match a canonical path segment");
  });

  test.each([
    ["GET /v1/caf\u00e9", "non-ASCII characters arrive percent-encoded"],
    ["GET /v1/a b", "spaces and control characters arrive percent-encoded"],
    ["GET /v1/a\tb", "spaces and control characters arrive percent-encoded"],
    ["GET /v1/{id}", '"{" arrives percent-encoded'],
    ["GET /v1/a;b", "paths with ; are refused"],
    ["GET /v1/a?b", "? ends the path"],
    ["GET /v1/a\\b", "\\ is read as /"],
    ["GET /v1/100%25", "patterns cannot spell percent-escapes"],
  ])("%s says why", (pattern, why) => {
    expect(() => parsePattern(pattern)).toThrow(why);
  });
});

describe("specificity", () => {
  const order = (...patterns: string[]) =>
    patterns
      .map((p) => parsePattern(p))
      .sort(compareSpecificity)
      .map((p) => p.text);

  test("literal > :param > * > end of pattern > **, then explicit methods", () => {
    expect(order("* /v1/**", "GET /v1/*", "GET /v1/:id", "GET /v1/items", "* /v1/items", "GET /v1")).toEqual([
      "GET /v1/items",
      "* /v1/items",
      "GET /v1/:id",
      "GET /v1/*",
      "GET /v1",
      "* /v1/**",
    ]);
  });

  test("a deeper literal prefix wins over a shorter one with **", () => {
    expect(order("* /v1/**", "POST /v1/reports/**")).toEqual(["POST /v1/reports/**", "* /v1/**"]);
  });

  test("covers: every request b matches, a matches too", () => {
    const c = (a: string, b: string) => covers(parsePattern(a), parsePattern(b));
    expect(c("* /v1/**", "GET /v1/items")).toBe(true);
    expect(c("GET /v1/:id", "GET /v1/items")).toBe(true);
    expect(c("GET /v1/:id", "GET,HEAD /v1/items")).toBe(false);
    expect(c("GET /v1/items", "GET /v1/:id")).toBe(false);
    expect(c("GET /v1/*", "GET /v1/**")).toBe(false);
    expect(c("GET /v1/**", "GET /v1/a/**")).toBe(true);
  });
});

test("foldedPattern folds the case of literals only, keeping the text and specificity", () => {
  const p = parsePattern("GET /V1/Admin/:Id/**");
  const f = foldedPattern(p);
  expect(matches(f, "GET", ["v1", "admin", "x"])).toBe(true);
  expect(matches(f, "GET", ["V1", "Admin", "x"])).toBe(false);
  expect(f.segments[2]).toEqual({ kind: "param", name: "Id" });
  expect(f.text).toBe(p.text);
  expect(compareSpecificity(f, p)).toBe(0);
});

describe("deny patterns are read leniently", () => {
  test("a literal that only arrives percent-encoded is an error in an allow or a route, not in a deny", () => {
    for (const literal of ["café", "a b", "{id}"]) {
      expect(() => parsePattern(`* /v1/${literal}/**`)).toThrow(PatternError);
      expect(parsePattern(`* /v1/${literal}/**`, { lenient: true }).segments[1]).toEqual({
        kind: "literal",
        value: literal,
      });
    }
    // What can never reach a decoded path either stays an error.
    for (const literal of ["a;b", "a%41", "a\\b", "..", "a\u0001"]) {
      expect(() => parsePattern(`* /v1/${literal}`, { lenient: true })).toThrow(PatternError);
    }
  });
});
