/**
 * Browser sessions of both surfaces: the operator's (opened with the admin token) and a tenant's in
 * the portal (opened with a one-time link). A session ends at the first of: its idle timeout since it
 * was last used, its absolute lifetime, sign-out, revocation (portal: the tenant's sessions at once),
 * and for operator sessions a change of the admin token. Rows live in SQLite, so a restart keeps them;
 * only the id's hash is stored and the id is never logged.
 */
import { and, eq, lte } from "drizzle-orm";
import type { OpenDb } from "../../db/open.ts";
import { uiSessions } from "../../db/schema.ts";
import type { Clock } from "../../lib/clock.ts";
import { csrfToken, hashSecret, newSecret, SECRET_FORM } from "./secrets.ts";

export type SessionKind = "operator" | "portal";

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

/** How long sessions last: idle since last use, and at most in all. */
export const SESSION_LIFETIMES: Record<SessionKind, { idleMs: number; absoluteMs: number }> = {
  operator: { idleMs: 30 * MINUTE, absoluteMs: 12 * HOUR },
  portal: { idleMs: 30 * MINUTE, absoluteMs: 8 * HOUR },
};

/** Last use is written at most this often: a page polling every few seconds writes once a minute. */
const TOUCH_EVERY_MS = MINUTE;

export interface Session {
  kind: SessionKind;
  tenantId: string | null;
  csrf: string;
  /** When it ends if it is not used again, and when it ends whatever happens. */
  idleUntil: number;
  expiresAt: number;
}

export interface OpenedSession extends Session {
  /** The cookie's value: shown this once, stored only as a hash. */
  id: string;
}

export class SessionStore {
  constructor(
    private readonly database: OpenDb,
    private readonly clock: Clock,
  ) {}

  private get db() {
    return this.database.db;
  }

  open(kind: SessionKind, owner: { tenantId?: string; tokenTag?: string } = {}): OpenedSession {
    const now = this.clock.now();
    const id = newSecret();
    const { idleMs, absoluteMs } = SESSION_LIFETIMES[kind];
    this.db.transaction((tx) => {
      tx.delete(uiSessions).where(lte(uiSessions.expiresAt, now)).run();
      tx.insert(uiSessions)
        .values({
          idHash: hashSecret(id),
          kind,
          tenantId: owner.tenantId ?? null,
          tokenTag: owner.tokenTag ?? null,
          createdAt: now,
          lastSeenAt: now,
          expiresAt: now + absoluteMs,
        })
        .run();
    });
    return {
      id,
      kind,
      tenantId: owner.tenantId ?? null,
      csrf: csrfToken(id),
      idleUntil: Math.min(now + idleMs, now + absoluteMs),
      expiresAt: now + absoluteMs,
    };
  }

  /**
   * The live session of this kind with this id, or null. An operator session also needs the tag of
   * the admin token in force. Using it counts as activity.
   */
  find(id: string, kind: SessionKind, tokenTag?: string): Session | null {
    if (!SECRET_FORM.test(id)) return null;
    const idHash = hashSecret(id);
    const row = this.db.select().from(uiSessions).where(eq(uiSessions.idHash, idHash)).get();
    if (!row || row.kind !== kind) return null;
    if (kind === "operator" && row.tokenTag !== tokenTag) return null;
    const now = this.clock.now();
    const { idleMs } = SESSION_LIFETIMES[kind];
    if (now >= row.expiresAt || now >= row.lastSeenAt + idleMs) {
      this.forget(idHash);
      return null;
    }
    let lastSeen = row.lastSeenAt;
    if (now - row.lastSeenAt >= TOUCH_EVERY_MS) {
      try {
        this.db.update(uiSessions).set({ lastSeenAt: now }).where(eq(uiSessions.idHash, idHash)).run();
        lastSeen = now;
      } catch {
        // The store refuses writes for now: the session then ends sooner, never later.
      }
    }
    return {
      kind,
      tenantId: row.tenantId,
      csrf: csrfToken(id),
      idleUntil: Math.min(lastSeen + idleMs, row.expiresAt),
      expiresAt: row.expiresAt,
    };
  }

  /** Sign-out. */
  end(id: string): void {
    if (SECRET_FORM.test(id)) this.forget(hashSecret(id));
  }

  /** Every portal session of the tenant; returns how many were live. */
  endTenant(tenantId: string): number {
    const now = this.clock.now();
    const ended = this.db
      .delete(uiSessions)
      .where(and(eq(uiSessions.kind, "portal"), eq(uiSessions.tenantId, tenantId)))
      .returning({ expiresAt: uiSessions.expiresAt, lastSeenAt: uiSessions.lastSeenAt })
      .all();
    const idle = SESSION_LIFETIMES.portal.idleMs;
    return ended.filter((s) => now < s.expiresAt && now < s.lastSeenAt + idle).length;
  }

  private forget(idHash: string): void {
    try {
      this.db.delete(uiSessions).where(eq(uiSessions.idHash, idHash)).run();
    } catch {
      // An ended session stays ended whether or not its row could be removed now.
    }
  }
}
