import { describe, expect, test } from "bun:test";
import { API_KEY_PREFIX, generateApiKey, isWellFormedApiKey } from "../../src/lib/api-key-format.ts";
import { plausibleKey } from "../../src/lib/key-hash.ts";

describe("generated API keys", () => {
  test("carry the prefix, 32 random base62 characters and a 6-character checksum", () => {
    const keys = Array.from({ length: 200 }, generateApiKey);
    for (const k of keys) {
      expect(k).toMatch(/^ghk_[0-9A-Za-z]{38}$/);
      expect(isWellFormedApiKey(k)).toBe(true);
      expect(plausibleKey(k)).toBe(true);
    }
    expect(new Set(keys).size).toBe(keys.length);
  });

  test("a changed character, a truncation or a made-up key fails the checksum", () => {
    const k = generateApiKey();
    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === "a" ? "b" : "a") + s.slice(i + 1);
    for (const i of [API_KEY_PREFIX.length, 10, 20, 35, k.length - 1]) {
      expect(isWellFormedApiKey(flip(k, i))).toBe(false);
      expect(plausibleKey(flip(k, i))).toBe(false);
    }
    expect(plausibleKey(k.slice(0, -1))).toBe(false);
    expect(plausibleKey(`${k}x`)).toBe(false);
    expect(plausibleKey("ghk_0000000000000000000000000000000000000000")).toBe(false);
  });

  test("keys written in gateway.yaml keep any printable form", () => {
    for (const k of ["gh_demo_acme_0001", "acme-secret-0001", "ghp_abcdefgh"])
      expect(plausibleKey(k)).toBe(true);
    for (const k of ["abc", "has space inside", "tab\there-ok?", "x".repeat(257)])
      expect(plausibleKey(k)).toBe(false);
  });
});
