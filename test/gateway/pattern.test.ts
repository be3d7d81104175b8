import { describe, expect, test } from "bun:test";
import {
  compareSpecificity,
  covers,
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
    ["get /x", "is not an HTTP method"],
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

describe("specificity", () => {
  const order = (...patterns: string[]) =>
    patterns
      .map(parsePattern)
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
