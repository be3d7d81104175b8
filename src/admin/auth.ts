/**
 * The control API's bearer token check. Compared in constant time (on digests, so lengths do not
 * leak either); tokens that are short or look like examples are refused at start-up instead.
 */
import { createHash, timingSafeEqual } from "node:crypto";

const digest = (s: string) => createHash("sha256").update(s).digest();

export function tokenMatches(expected: string, header: string | null): boolean {
  if (!header) return false;
  const m = /^Bearer ([^\s]+)$/i.exec(header);
  if (!m) return false;
  return timingSafeEqual(digest(m[1]!), digest(expected));
}

const sampleTokens = new Set([
  "changeme",
  "change-me",
  "secret",
  "admin",
  "token",
  "password",
  "test",
  "example",
]);

/** Why a configured admin token must not be used, or null when it is fine. */
export function weakTokenReason(token: string): string | null {
  if (
    sampleTokens.has(token.toLowerCase()) ||
    /^(admin|dev|demo|example|sample|test)[-_]?token$/i.test(token)
  ) {
    return "the admin token is a well-known sample value";
  }
  if (token.length < 16) return "the admin token is shorter than 16 characters";
  return null;
}
