/**
 * One-time sign-in links to the tenant portal. The control API mints one for a tenant; the portal
 * redeems it once, for a session. A link is a random token (only its hash is stored) that ends at its
 * expiry, at its first use, or when the operator revokes the tenant's links and sessions.
 */
import { eq, lte } from "drizzle-orm";
import type { OpenDb } from "../../db/open.ts";
import { portalLinks } from "../../db/schema.ts";
import type { Clock } from "../../lib/clock.ts";
import { hashSecret, newSecret, SECRET_FORM } from "./secrets.ts";

export const DEFAULT_LINK_TTL_MS = 15 * 60_000;
export const MAX_LINK_TTL_MS = 24 * 3_600_000;

export class PortalLinks {
  constructor(
    private readonly database: OpenDb,
    private readonly clock: Clock,
  ) {}

  private get db() {
    return this.database.db;
  }

  /** A new link's token (shown once) and when it stops working. */
  mint(tenantId: string, ttlMs: number): { token: string; expiresAt: number } {
    const now = this.clock.now();
    const token = newSecret();
    const expiresAt = now + ttlMs;
    this.db.transaction((tx) => {
      tx.delete(portalLinks).where(lte(portalLinks.expiresAt, now)).run();
      tx.insert(portalLinks)
        .values({ tokenHash: hashSecret(token), tenantId, createdAt: now, expiresAt })
        .run();
    });
    return { token, expiresAt };
  }

  /** The tenant the link was minted for, or null; either way the link is used up. */
  redeem(token: string): string | null {
    if (!SECRET_FORM.test(token)) return null;
    const row = this.db
      .delete(portalLinks)
      .where(eq(portalLinks.tokenHash, hashSecret(token)))
      .returning({ tenantId: portalLinks.tenantId, expiresAt: portalLinks.expiresAt })
      .get();
    if (!row || this.clock.now() >= row.expiresAt) return null;
    return row.tenantId;
  }

  /** Every unused link of the tenant; returns how many were still valid. */
  revokeTenant(tenantId: string): number {
    const now = this.clock.now();
    return this.db
      .delete(portalLinks)
      .where(eq(portalLinks.tenantId, tenantId))
      .returning({ expiresAt: portalLinks.expiresAt })
      .all()
      .filter((l) => now < l.expiresAt).length;
  }
}
