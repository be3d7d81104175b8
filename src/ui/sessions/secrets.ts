/**
 * The random values browsers carry (session ids, sign-in link tokens) and what is kept of them: 256
 * random bits, base64url, and only their SHA-256 in the database, so a copy of the database signs no
 * one in. A session's CSRF token is derived from its id, so nothing more is stored for it.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";

/** 32 random bytes as base64url: 43 characters. */
export function newSecret(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64url");
}

/** What a cookie or link may hold: anything else is ignored before it reaches the database. */
export const SECRET_FORM = /^[A-Za-z0-9_-]{43}$/;

export const hashSecret = (secret: string) => createHash("sha256").update(secret).digest("hex");

/**
 * The session's CSRF token: an HMAC of a fixed label under the session id. Only someone who holds the
 * id (the httpOnly cookie, unreadable to scripts) or was given the token by a same-origin request can
 * send it; a page of another site has neither.
 */
export const csrfToken = (sessionId: string) =>
  createHmac("sha256", sessionId).update("gatehouse csrf").digest("base64url");

export function csrfMatches(sessionId: string, sent: string | null): boolean {
  if (sent === null) return false;
  const want = Buffer.from(csrfToken(sessionId));
  const got = Buffer.from(sent);
  return got.length === want.length && timingSafeEqual(got, want);
}
