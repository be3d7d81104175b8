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
    ["/v1/100%25x", "/v1/100%25x"],
    ["/v1/%CE%B1%CF%82", "/v1/%CE%B1%CF%82"],
    ["/v1/%F0%9F%98%80", "/v1/%F0%9F%98%80"],
    ["/v1/%E2%82%AC", "/v1/%E2%82%AC"],
    ["/v1/ADMIN", "/v1/ADMIN"],
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
    ["/v1/a\\b", "raw backslash"],
    ["/v1/caf\u00e9", "non-ASCII"],
  ])("%s is refused (%s)", (raw, reason) => {
    const r = canonicalizePath(raw);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toContain(reason);
  });

  // A second decoding would read an escape: refused whether the client sent it or our own decoding of
  // unreserved characters assembled it.
  test.each([
    "/v1/%25%34%31dmin",
    "/v1/%25%36%31dmin",
    "/v1/%25%32%65%25%32%65/admin",
    "/v1/%254%31dmin",
    "/v1/%25%341dmin",
    "/v1/%25%32%66",
    "/v1/%25u0061dmin",
    "/v1/%25%75%30%30%36%31dmin",
  ])("%s is refused as double-encoded", (raw) => {
    const r = canonicalizePath(raw);
    expect(!r.ok && r.reason).toContain("double-encoded");
  });

  test.each([
    ["/v1/%C0%AE%C0%AE/admin", "overlong ."],
    ["/v1/%C0%AF", "overlong /"],
    ["/v1/%E0%80%AE", "overlong . in three bytes"],
    ["/v1/%E0%80%AF", "overlong / in three bytes"],
    ["/v1/%F0%80%80%AE", "overlong . in four bytes"],
    ["/v1/%C1%81dmin", "overlong A"],
    ["/v1/%80", "stray continuation byte"],
    ["/v1/a%BFb", "stray continuation byte"],
    ["/v1/%C3", "truncated sequence"],
    ["/v1/%C3a", "truncated sequence"],
    ["/v1/%E2%82", "truncated sequence"],
    ["/v1/%ED%A0%80", "encoded surrogate"],
    ["/v1/%ED%BF%BF", "encoded surrogate"],
    ["/v1/%F4%90%80%80", "above U+10FFFF"],
    ["/v1/%F8%88%80%80%80", "five-byte form"],
    ["/v1/%FF", "never valid"],
    ["/v1/a%EF%BF%BD%EF%BF%BD/b", "U+FFFD: Bun's stand-in for raw bytes that were not UTF-8"],
  ])("%s is refused (%s)", (raw) => {
    const r = canonicalizePath(raw);
    expect(!r.ok && r.reason).toContain("not valid UTF-8");
  });

  test.each(["/v1/a%23b", "/v1/a%3fb", "/v1/admin%3F/x", "/v1/%23/../admin"])(
    "%s is refused: a server that decodes before splitting reads a fragment or query",
    (raw) => {
      const r = canonicalizePath(raw);
      expect(!r.ok && r.reason).toContain("encoded # and ?");
    },
  );

  test.each([
    ["/v1/%C2%85", "C1 control (NEL)", "control characters"],
    ["/v1/%EF%BC%8F", "fullwidth /", "NFKC"],
    ["/v1/%EF%BC%8E%EF%BC%8E", "fullwidth .", "NFKC"],
    ["/v1/%EF%BD%81dmin", "fullwidth a", "NFKC"],
    ["/v1/%E2%80%A4%E2%80%A4", "one dot leader", "NFKC"],
    ["/v1/%EF%AC%81le", "ligature fi", "NFKC"],
    ["/v1/cafe%CC%81", "e + combining acute, which NFC composes", "NFKC"],
    ["/v1/%E2%84%AA", "Kelvin sign, lower case k", "NFKC"],
    ["/v1/%C4%B0tems", "İ, lower case i + dot", "ASCII"],
    ["/v1/adm%C4%B1n", "dotless ı, upper case I", "ASCII"],
    ["/v1/items/1/%C5%BFecret", "long s, upper case S", "NFKC"],
    ["/v1/stra%C3%9Fe", "ß, upper case SS", "ASCII"],
    ["/v1/%C7%B0", "ǰ, upper case J + caron", "ASCII"],
  ])("%s is refused (%s)", (raw, _what, reason) => {
    const r = canonicalizePath(raw);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.reason).toContain(reason);
  });

  test("the lenient segments are decoded and case-folded; a plain path's are its segments", () => {
    const plain = canonicalizePath("/v1/items/42");
    expect(plain.ok && plain.lenientSegments).toBe(plain.ok && plain.segments);
    const upper = canonicalizePath("/V1/Admin/X");
    expect(upper.ok && upper.segments).toEqual(["V1", "Admin", "X"]);
    expect(upper.ok && upper.lenientSegments).toEqual(["v1", "admin", "x"]);
    const escaped = canonicalizePath("/v1/ITEMS%3Apurge/CAF%C3%89/100%25");
    expect(escaped.ok && escaped.path).toBe("/v1/ITEMS%3Apurge/CAF%C3%89/100%25");
    expect(escaped.ok && escaped.lenientSegments).toEqual(["v1", "items:purge", "café", "100%"]);
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
      lenientSegments: ["v1", "a"],
      query: "x=1&y=%2F",
    });
    expect(canonicalize("http://h:1/v1/a#f?x")).toEqual({
      ok: true,
      path: "/v1/a",
      segments: ["v1", "a"],
      lenientSegments: ["v1", "a"],
      query: "",
    });
  });

  test("canonicalizing is idempotent", () => {
    for (const raw of ["/v1//a/%61/%c3%a9/", "/a/b", "/%7e/x", "/A/%3a", "/100%25/x"]) {
      const once = canonicalizePath(raw);
      const twice = once.ok ? canonicalizePath(once.path) : once;
      expect(twice).toEqual(once);
    }
  });
});
