import { describe, expect, test } from "bun:test";
import { canonicalize, canonicalizePath } from "../../src/gateway/canonical-path.ts";

describe("canonical paths", () => {
  test.each([
    ["/v1/items", "/v1/items"],
    ["/", "/"],
    ["/v1/items/", "/v1/items/"],
    ["/v1//items", "/v1/items"],
    ["//v1///items", "/v1/items"],
    ["/v1/%61dmin", "/v1/admin"],
    ["/v1/%7Euser", "/v1/~user"],
    ["/v1/caf%c3%a9", "/v1/caf%C3%A9"],
    ["/v1/a%20b", "/v1/a%20b"],
    ["/v1/100%25", "/v1/100%25"],
  ])("%s → %s", (raw, want) => {
    const r = canonicalizePath(raw);
    expect(r.ok && r.path).toBe(want);
  });

  test.each([
    ["/v1/a%2Fb", "encoded slashes"],
    ["/v1/a%5cb", "encoded slashes"],
    ["/v1/a%00", "control characters"],
    ["/v1/a%0A", "control characters"],
    ["/v1/a%7f", "control characters"],
    ["/v1/%252e", "double-encoded"],
    ["/v1/a;b", "path parameters"],
    ["/v1/a%3Bb", "path parameters"],
    ["/v1/a%", "invalid percent-escape"],
    ["/v1/a%g1", "invalid percent-escape"],
    ["/v1/%2e%2E/x", "dot segments"],
    ["/v1/.%2e/x", "dot segments"],
  ])("%s is refused (%s)", (raw, reason) => {
    const r = canonicalizePath(raw);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toContain(reason);
  });

  test("segments are the canonical path split on /", () => {
    const r = canonicalizePath("/v1//a/%62/");
    expect(r.ok && r.segments).toEqual(["v1", "a", "b", ""]);
  });

  test("splits a full URL into path and raw query, dropping any fragment", () => {
    expect(canonicalize("http://h:1/v1/a?x=1&y=%2F#frag")).toEqual({
      ok: true,
      path: "/v1/a",
      segments: ["v1", "a"],
      query: "x=1&y=%2F",
    });
    expect(canonicalize("http://h:1/v1/a#f?x")).toEqual({
      ok: true,
      path: "/v1/a",
      segments: ["v1", "a"],
      query: "",
    });
  });

  test("canonicalizing is idempotent", () => {
    for (const raw of ["/v1//a/%61/%c3%a9/", "/a/b", "/%7e/x"]) {
      const once = canonicalizePath(raw);
      const twice = once.ok ? canonicalizePath(once.path) : once;
      expect(twice).toEqual(once);
    }
  });
});
