import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { type OpenDb, openDb } from "../../src/db/open.ts";
import { ManualClock } from "../../src/lib/clock.ts";
import { PortalLinks } from "../../src/ui/sessions/links.ts";
import { csrfMatches, hashSecret } from "../../src/ui/sessions/secrets.ts";
import { SESSION_LIFETIMES, SessionStore } from "../../src/ui/sessions/store.ts";

const MINUTE = 60_000;
let database: OpenDb;
let clock: ManualClock;
let store: SessionStore;

beforeEach(() => {
  database = openDb(":memory:");
  clock = new ManualClock(Date.parse("2026-03-01T10:00:00Z"));
  store = new SessionStore(database, clock);
  const now = clock.now();
  for (const id of ["acme", "globex"]) {
    database.sqlite
      .query(
        "INSERT INTO tenants (id, uid, name, plan, source, created_at, updated_at) VALUES (?, ?, ?, 'free', 'api', ?, ?)",
      )
      .run(id, `${id}-uid`, id, now, now);
  }
});
afterEach(() => database.close());

const rows = () => database.sqlite.query("SELECT * FROM ui_sessions").all() as Record<string, unknown>[];

describe("sessions", () => {
  test("ids are random 256-bit values, stored only as their SHA-256", () => {
    const a = store.open("operator", { tokenTag: "t" });
    const b = store.open("operator", { tokenTag: "t" });
    expect(a.id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(a.id).not.toBe(b.id);
    const dump = JSON.stringify(rows());
    expect(dump).not.toContain(a.id);
    expect(dump).not.toContain(b.id);
    expect(
      rows()
        .map((r) => r.id_hash)
        .sort(),
    ).toEqual([hashSecret(a.id), hashSecret(b.id)].sort());
  });

  test("a session's CSRF token is its own: another session's or a made-up one does not match", () => {
    const a = store.open("portal", { tenantId: "acme" });
    const b = store.open("portal", { tenantId: "acme" });
    expect(csrfMatches(a.id, a.csrf)).toBe(true);
    expect(csrfMatches(a.id, b.csrf)).toBe(false);
    expect(csrfMatches(a.id, null)).toBe(false);
    expect(csrfMatches(a.id, `${a.csrf}x`)).toBe(false);
  });

  test("ends after the idle timeout without use, and is kept alive by use", () => {
    const { idleMs } = SESSION_LIFETIMES.operator;
    const s = store.open("operator", { tokenTag: "t" });
    clock.advance(idleMs - MINUTE);
    expect(store.find(s.id, "operator", "t")).not.toBeNull();
    // That use moved the idle deadline: another idle period minus a minute later it still works.
    clock.advance(idleMs - MINUTE);
    expect(store.find(s.id, "operator", "t")).not.toBeNull();
    clock.advance(idleMs);
    expect(store.find(s.id, "operator", "t")).toBeNull();
    expect(rows()).toHaveLength(0);
  });

  test("ends at its absolute lifetime however busy it is", () => {
    const { absoluteMs } = SESSION_LIFETIMES.portal;
    const s = store.open("portal", { tenantId: "acme" });
    for (let t = 0; t < absoluteMs - 10 * MINUTE; t += 10 * MINUTE) {
      clock.advance(10 * MINUTE);
      expect(store.find(s.id, "portal")).not.toBeNull();
    }
    clock.advance(10 * MINUTE);
    expect(store.find(s.id, "portal")).toBeNull();
  });

  test("last use is written at most once a minute", () => {
    const s = store.open("portal", { tenantId: "acme" });
    const opened = rows()[0]!.last_seen_at;
    clock.advance(30_000);
    store.find(s.id, "portal");
    expect(rows()[0]!.last_seen_at).toBe(opened);
    clock.advance(30_000);
    store.find(s.id, "portal");
    expect(rows()[0]!.last_seen_at).toBe(clock.now());
  });

  test("a session is found only as its own kind, and an operator's only under the token it was opened with", () => {
    const op = store.open("operator", { tokenTag: "old-token" });
    const portal = store.open("portal", { tenantId: "acme" });
    expect(store.find(op.id, "portal")).toBeNull();
    expect(store.find(portal.id, "operator", undefined)).toBeNull();
    expect(store.find(op.id, "operator", "new-token")).toBeNull();
    expect(store.find(op.id, "operator", "old-token")).not.toBeNull();
    expect(store.find("not-a-session", "portal")).toBeNull();
  });

  test("sign-out ends one session; ending a tenant's ends all of its portal sessions only", () => {
    const a1 = store.open("portal", { tenantId: "acme" });
    const a2 = store.open("portal", { tenantId: "acme" });
    const g = store.open("portal", { tenantId: "globex" });
    store.end(a1.id);
    expect(store.find(a1.id, "portal")).toBeNull();
    expect(store.endTenant("acme")).toBe(1);
    expect(store.find(a2.id, "portal")).toBeNull();
    expect(store.find(g.id, "portal")).not.toBeNull();
  });

  test("deleting the tenant deletes its sessions", () => {
    const s = store.open("portal", { tenantId: "acme" });
    database.sqlite.query("DELETE FROM tenants WHERE id = 'acme'").run();
    expect(store.find(s.id, "portal")).toBeNull();
  });
});

describe("portal links", () => {
  test("work once, for their tenant, until they expire; only their hash is stored", () => {
    const links = new PortalLinks(database, clock);
    const { token, expiresAt } = links.mint("acme", 15 * MINUTE);
    expect(expiresAt).toBe(clock.now() + 15 * MINUTE);
    expect(JSON.stringify(database.sqlite.query("SELECT * FROM portal_links").all())).not.toContain(token);
    expect(links.redeem(token)).toBe("acme");
    expect(links.redeem(token)).toBeNull();

    const late = links.mint("acme", 15 * MINUTE).token;
    clock.advance(15 * MINUTE);
    expect(links.redeem(late)).toBeNull();
  });

  test("revoking a tenant's links leaves other tenants' working", () => {
    const links = new PortalLinks(database, clock);
    const a = links.mint("acme", MINUTE * 5).token;
    const g = links.mint("globex", MINUTE * 5).token;
    expect(links.revokeTenant("acme")).toBe(1);
    expect(links.redeem(a)).toBeNull();
    expect(links.redeem(g)).toBe("globex");
  });
});
