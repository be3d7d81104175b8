import { describe, expect, test } from "bun:test";
import type { KeyView, Snapshot } from "../../src/gateway/snapshot.ts";
import { compileIdentity } from "../../src/identity/compile.ts";
import { hashKey } from "../../src/lib/key-hash.ts";
import { KeyCache } from "../../src/policies/auth/index.ts";

const key = (id: string): KeyView => ({
  id,
  uid: id,
  tenantId: "t",
  expiresAt: null,
  disabled: false,
  graceUntil: null,
  limits: [],
  rules: [],
  quotas: [],
});

function snapshot(keys: Record<string, KeyView>): Snapshot {
  return {
    version: 1,
    routes: [],
    upstreams: new Map(),
    tenants: new Map(),
    keysByHash: new Map(Object.entries(keys).map(([secret, k]) => [hashKey(secret), k])),
    plans: new Map(),
    identity: compileIdentity({}),
    tenantsByName: new Map(),
  };
}

describe("KeyCache", () => {
  test("answers from the snapshot and remembers only keys that exist", () => {
    const cache = new KeyCache();
    const a = key("a");
    const snap = snapshot({ "secret-a-0001": a });
    expect(cache.lookup(snap, "secret-a-0001")).toBe(a);
    expect(cache.lookup(snap, "secret-a-0001")).toBe(a);
    expect(cache.lookup(snap, "not-a-key-0001")).toBeUndefined();
    expect(cache.lookup(snap, "\u0001bad")).toBeUndefined();
    expect(cache.size).toBe(1);
  });

  test("a new snapshot is never answered from the old one's entries", () => {
    const cache = new KeyCache();
    const before = snapshot({ "secret-a-0001": key("a") });
    const revoked = snapshot({});
    expect(cache.lookup(before, "secret-a-0001")?.id).toBe("a");
    expect(cache.lookup(revoked, "secret-a-0001")).toBeUndefined();
    expect(cache.size).toBe(0);
    const rotated = snapshot({ "secret-a-0001": key("a2") });
    expect(cache.lookup(rotated, "secret-a-0001")?.id).toBe("a2");
  });

  test("clear() (run on every snapshot swap) forgets every secret", () => {
    const cache = new KeyCache();
    const snap = snapshot({ "secret-a-0001": key("a") });
    cache.lookup(snap, "secret-a-0001");
    cache.clear();
    expect(cache.size).toBe(0);
    expect(cache.lookup(snap, "secret-a-0001")?.id).toBe("a");
  });

  test("is bounded: full, it starts over", () => {
    const cache = new KeyCache(3);
    const secrets = ["secret-1-0001", "secret-2-0001", "secret-3-0001", "secret-4-0001"];
    const snap = snapshot(Object.fromEntries(secrets.map((s, i) => [s, key(`k${i}`)])));
    for (const s of secrets.slice(0, 3)) cache.lookup(snap, s);
    expect(cache.size).toBe(3);
    expect(cache.lookup(snap, secrets[3]!)?.id).toBe("k3");
    expect(cache.size).toBe(1);
    expect(cache.lookup(snap, secrets[0]!)?.id).toBe("k0");
  });
});
