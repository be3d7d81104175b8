/**
 * The JWKS cache on a manual clock and scheduler, with a scripted fetch: how often it fetches, what
 * it keeps while the provider is down, and that a provider that never answers costs one timeout.
 */
import { expect, test } from "bun:test";
import type { JWK } from "jose";
import { RemoteKeySet } from "../../src/identity/jwks-cache.ts";
import { NoKeyError } from "../../src/identity/keys.ts";
import { ManualClock } from "../../src/lib/clock.ts";
import { ManualScheduler } from "../../src/lib/scheduler.ts";
import { makeKey } from "../support/jwt.ts";

type Answer = "ok" | "error" | "hang";

async function setup() {
  const [k1, k2] = await Promise.all([makeKey("k1"), makeKey("k2")]);
  const clock = new ManualClock(Date.UTC(2030, 0, 1));
  const scheduler = new ManualScheduler(() => clock.now());
  const state = { answer: "ok" as Answer, keys: [k1.publicJwk] as JWK[], calls: 0, aborted: 0 };
  const fetchStub = ((_url: string, init: RequestInit) => {
    state.calls++;
    if (state.answer === "error") return Promise.resolve(new Response("no", { status: 503 }));
    if (state.answer === "hang") {
      return new Promise((_, reject) =>
        init.signal?.addEventListener("abort", () => {
          state.aborted++;
          reject(new Error("aborted"));
        }),
      );
    }
    return Promise.resolve(Response.json({ keys: state.keys }));
  }) as unknown as typeof fetch;
  const logs: string[] = [];
  const set = new RemoteKeySet(
    { url: "https://idp.test/jwks", cacheForMs: 600_000, timeoutMs: 5_000, cooldownMs: 30_000 },
    ["RS256"],
    { fetch: fetchStub, clock, scheduler, log: (_l, msg) => logs.push(msg) },
  );
  return { k1, k2, clock, scheduler, state, set, logs };
}

const fails = (p: Promise<unknown>) =>
  p.then(
    () => "resolved",
    (e: unknown) => (e instanceof NoKeyError ? e.message : String(e)),
  );

test("one fetch serves every request until cacheFor; concurrent first requests share it", async () => {
  const { set, state, clock } = await setup();
  await Promise.all([set.key("RS256", "k1"), set.key("RS256", "k1"), set.key("RS256", "k1")]);
  expect(state.calls).toBe(1);
  clock.advance(599_000);
  await set.key("RS256", "k1");
  expect(state.calls).toBe(1);
  clock.advance(1_000);
  await set.key("RS256", "k1");
  expect(state.calls).toBe(2);
});

test("an unknown kid refetches at most once per cooldown", async () => {
  const { set, state, clock, k2 } = await setup();
  await set.key("RS256", "k1");
  state.keys = [...state.keys, k2.publicJwk];
  expect(await fails(set.key("RS256", "k2"))).toContain("key id");
  expect(state.calls).toBe(1);
  clock.advance(30_000);
  expect(await fails(set.key("RS256", "k2"))).toBe("resolved");
  expect(state.calls).toBe(2);
  for (const kid of ["x1", "x2", "../../etc/passwd"]) await fails(set.key("RS256", kid));
  expect(state.calls).toBe(2);
});

test("the last good set is kept while the provider fails, and retried once per cooldown", async () => {
  const { set, state, clock, logs } = await setup();
  await set.key("RS256", "k1");
  state.answer = "error";
  clock.advance(600_000);
  expect(await fails(set.key("RS256", "k1"))).toBe("resolved");
  await Promise.resolve();
  expect(await fails(set.key("RS256", "k1"))).toBe("resolved");
  expect(state.calls).toBe(2);
  expect(set.lastError).toBe("status 503");
  expect(logs).toContain("JWKS fetch failed");
  clock.advance(30_000);
  await set.refresh();
  expect(await fails(set.key("RS256", "k1"))).toBe("resolved");
  expect(state.calls).toBe(3);
});

test("a provider that never answers is cut off after the timeout, on the injected scheduler", async () => {
  const { set, state, scheduler, clock } = await setup();
  state.answer = "hang";
  const first = fails(set.key("RS256", "k1"));
  const second = fails(set.key("RS256", "k1"));
  await Promise.resolve();
  expect(state.calls).toBe(1);
  clock.advance(4_999);
  scheduler.runDue();
  expect(state.aborted).toBe(0);
  clock.advance(1);
  scheduler.runDue();
  expect(await first).toContain("no answer within 5000 ms");
  expect(await second).toContain("unavailable");
  expect(state.aborted).toBe(1);
  // Without keys, requests within the cooldown fail at once instead of piling up fetches.
  expect(await fails(set.key("RS256", "k1"))).toContain("unavailable");
  expect(state.calls).toBe(1);
});

test("a document that is not a key set, or has no usable key, keeps what was there", async () => {
  const { set, state, clock } = await setup();
  await set.key("RS256", "k1");
  state.keys = [{ kty: "oct", k: "c2VjcmV0", kid: "k1" }];
  clock.advance(600_000);
  await set.refresh();
  expect(set.lastError).toBe("no key in the set fits the source's algorithms");
  expect(await fails(set.key("RS256", "k1"))).toBe("resolved");
});
