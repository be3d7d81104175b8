/**
 * How the control API's guard recognises an operator's browser: the session cookie, only for
 * sessions opened with the admin token in force, and on every change only together with the
 * session's CSRF token (the guard's Origin and Sec-Fetch-Site checks run before this).
 */
import { createHash } from "node:crypto";
import type { GuardSessions } from "../../admin/guard.ts";
import { DASHBOARD_ASSETS } from "../assets/index.ts";
import { OPERATOR_COOKIE, readCookie } from "../sessions/cookies.ts";
import { csrfMatches } from "../sessions/secrets.ts";
import type { Session, SessionStore } from "../sessions/store.ts";

export const UI_PREFIX = "/ui";
export const ASSET_PREFIX = `${UI_PREFIX}/assets/`;
export const CSRF_HEADER = "x-csrf-token";

const READS = new Set(["GET", "HEAD"]);
/** The dashboard's pages: one HTML shell whose script draws the page the path names. */
const PAGE = /^\/ui(\/sign-in|\/tenants\/[A-Za-z0-9][A-Za-z0-9_.-]{0,63})?$/;

export function isDashboardPage(pathname: string): boolean {
  return PAGE.test(pathname);
}

/** A digest naming the admin token a session was opened with; a new token ends older sessions. */
export const tokenTag = (token: string) =>
  createHash("sha256").update(`gatehouse operator session\0${token}`).digest("hex");

export interface OperatorSessions extends GuardSessions {
  /** The request's live operator session and its id, or null. */
  current(request: Request): { id: string; session: Session } | null;
  readonly tag: string | undefined;
}

export function operatorSessions(store: SessionStore, token: string | null): OperatorSessions {
  const tag = token === null ? undefined : tokenTag(token);
  const current = (request: Request) => {
    if (tag === undefined) return null;
    const id = readCookie(request, OPERATOR_COOKIE);
    const session = id === null ? null : store.find(id, "operator", tag);
    return session && id !== null ? { id, session } : null;
  };
  return {
    tag,
    current,
    check(request) {
      const found = current(request);
      if (!found) return "none";
      if (READS.has(request.method)) return "ok";
      return csrfMatches(found.id, request.headers.get(CSRF_HEADER)) ? "ok" : "csrf";
    },
    isPublic(method, pathname) {
      if (!READS.has(method)) return false;
      if (isDashboardPage(pathname)) return true;
      return pathname.startsWith(ASSET_PREFIX) && DASHBOARD_ASSETS.has(pathname.slice(ASSET_PREFIX.length));
    },
  };
}
