/**
 * Several gatehouse processes (`bun src/main.ts serve --test-mode`, clocks started together) sharing
 * one redis-server: limits hold across them, a node killed while holding concurrency slots frees
 * them when its leases run out, and a Redis that dies and returns is survived and reconciled.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Log } from "../../src/lib/log.ts";
import { startTestGateway } from "../support/gateway.ts";
import { type GatehouseProcess, gatehouseCommand, startProcess } from "../support/process.ts";
import { startRedis, type TestRedis } from "../support/redis.ts";
import { freshPrefix } from "./redis-support.ts";

const CLOCK_START = "2030-01-01T00:00:00Z";
const KEY = "acme-secret-0001";
const CAPPED_KEY = "capped-secret-0001";

const config = (prefix: string) => `version: 1
cluster:
  redis: \${REDIS_URL}
  keyPrefix: "${prefix}"
  leaseTtl: 6s
  # A loaded test machine must not fail over by accident; a dead Redis answers at once anyway.
  redisTimeout: 2s
upstreams:
  echo: { mock: echo }
  hangs: { mock: hang, timeout: 1h }
plans:
  metered:
    limits: [{ limit: 10, window: 1m, name: burst }]
    quota: { limit: 1000, period: day, name: daily }
    rules: [{ allow: "* /**" }]
  capped:
    concurrency: 2
    rules: [{ allow: "* /**" }]
routes:
  - { match: "* /v1/**", upstream: echo }
  - { match: "* /hangs/**", upstream: hangs }
tenants:
  acme:
    plan: metered
    keys: [{ id: acme-key, secret: ${KEY} }]
  capped:
    plan: capped
    keys: [{ id: capped-key, secret: ${CAPPED_KEY} }]
`;

let redis: TestRedis;
let dir: string;
let running: GatehouseProcess[] = [];
beforeAll(async () => {
  redis = await startRedis();
  dir = mkdtempSync(join(tmpdir(), "gatehouse-nodes-"));
});
afterEach(async () => {
  for (const p of running) {
    p.proc.kill("SIGKILL");
    await p.proc.exited;
  }
  running = [];
});
afterAll(async () => {
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function startNodes(count: number): Promise<GatehouseProcess[]> {
  const path = join(dir, `${freshPrefix().replace(":", "")}.yaml`);
  writeFileSync(path, config(freshPrefix()));
  const nodes = await Promise.all(
    Array.from({ length: count }, () =>
      startProcess(
        gatehouseCommand(),
        [
          "serve",
          path,
          "--db",
          ":memory:",
          "--listen",
          "127.0.0.1:0",
          "--admin",
          "127.0.0.1:0",
          "--test-mode",
          "--clock-start",
          CLOCK_START,
        ],
        { env: { REDIS_URL: redis.url } },
      ),
    ),
  );
  running.push(...nodes);
  // Every node has seen every other in Redis (heartbeats, once a second).
  for (const n of nodes) await until(async () => (await metric(n, "gatehouse_cluster_nodes")) === count);
  return nodes;
}

const send = (n: GatehouseProcess, path = "/v1/items", key = KEY) =>
  fetch(`${n.dataUrl}${path}`, { headers: { "x-api-key": key } });
const admin = async (n: GatehouseProcess, method: string, path: string, body?: unknown) => {
  const r = await fetch(`${n.adminUrl}${path}`, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
};
const advance = (nodes: GatehouseProcess[], by: string) =>
  Promise.all(nodes.map((n) => admin(n, "POST", "/clock", { advance: by })));

async function metric(n: GatehouseProcess, name: string, labels = ""): Promise<number | null> {
  const text = await (await fetch(`${n.adminUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? null : Number(line.slice(line.lastIndexOf(" ") + 1));
}

/** Polls (real time: heartbeats and probes run on real timers) until `ok`, for at most 20 s. */
async function until(ok: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await ok()) return;
    await Bun.sleep(50);
  }
  throw new Error("condition not reached in 20 s");
}

/** The capped tenant's requests in flight on every node, as a node reads them in Redis. */
const inFlight = async (n: GatehouseProcess) => {
  const e = await admin(n, "POST", "/explain", { key: "capped-key", method: "GET", path: "/v1/items" });
  return (e.body.concurrency as { inFlight: number }).inFlight;
};

/** A burst of `count` requests spread over the nodes, all at once. */
async function burst(nodes: GatehouseProcess[], count: number) {
  const answers = await Promise.all(Array.from({ length: count }, (_, i) => send(nodes[i % nodes.length]!)));
  for (const a of answers) await a.arrayBuffer();
  return answers;
}

describe("three nodes, one Redis", () => {
  test("a concurrent burst over all nodes admits exactly the limit; refusals cost nothing; Retry-After is exact", async () => {
    const nodes = await startNodes(3);
    const first = await burst(nodes, 30);
    const admitted = first.filter((r) => r.status === 200);
    expect(admitted.length).toBe(10);
    // Each admission saw its own count: the remaining units are 9, 8, … 0, once each.
    const remaining = admitted.map((r) => Number(/"burst";r=(\d+)/.exec(r.headers.get("ratelimit")!)![1]));
    expect(remaining.sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const refused = first.filter((r) => r.status === 429);
    expect(refused.length).toBe(20);
    // The ten units sit in one 3 s bucket, which leaves the 1 m window after 62.999 s.
    expect(new Set(refused.map((r) => r.headers.get("retry-after")))).toEqual(new Set(["63"]));

    await advance(nodes, "62s");
    expect((await burst(nodes, 3)).map((r) => r.status)).toEqual([429, 429, 429]);
    await advance(nodes, "1s");
    // Nothing the refusals asked for was counted: the whole limit is there again.
    expect((await burst(nodes, 30)).filter((r) => r.status === 200).length).toBe(10);
    // The daily quota counted every admission on every node, and each node shows it.
    const used = async (n: GatehouseProcess) =>
      ((await admin(n, "GET", "/tenants/acme/quota")).body.quotas as { used: number }[])[0]!.used;
    for (const n of nodes) expect(await used(n)).toBe(20);
    // An operator's credit on one node is the count on every node.
    expect((await admin(nodes[0]!, "POST", "/tenants/acme/quota/credit", { units: 15 })).status).toBe(200);
    for (const n of nodes) expect(await used(n)).toBe(5);
    expect((await admin(nodes[1]!, "POST", "/tenants/acme/quota/reset")).status).toBe(200);
    for (const n of nodes) expect(await used(n)).toBe(0);
  }, 30_000);

  test("a node killed while holding concurrency slots frees them when its leases run out", async () => {
    const [a, b] = await startNodes(2);
    // Two requests hang on a, one after the other: the tenant's cap of 2 is taken.
    const hanging: Promise<unknown>[] = [];
    for (const n of [1, 2]) {
      hanging.push(send(a!, `/hangs/${n}`, CAPPED_KEY).catch(() => null));
      await until(async () => (await inFlight(a!)) === n);
    }
    const r = await send(b!, "/v1/items", CAPPED_KEY);
    expect(r.status).toBe(429);
    expect(((await r.json()) as { type: string }).type).toBe("urn:gatehouse:problem:concurrency-limited");

    a!.proc.kill("SIGKILL");
    await a!.proc.exited;
    await Promise.all(hanging);
    // The leases live 6 s on b's clock from their last renewal, at the start.
    await advance([b!], "5s");
    expect((await send(b!, "/v1/items", CAPPED_KEY)).status).toBe(429);
    await advance([b!], "1s");
    expect((await send(b!, "/v1/items", CAPPED_KEY)).status).toBe(200);
  }, 30_000);
});

describe("Redis dies and returns", () => {
  test("local: each node its share, degraded but serving; on return the quotas are reconciled and counting is shared again", async () => {
    const [a, b] = await startNodes(2);
    expect((await burst([a!], 3)).map((r) => r.status)).toEqual([200, 200, 200]);
    // b reads the count too (a control-API read refreshes its copy from Redis).
    expect(((await admin(b!, "GET", "/tenants/acme/quota")).body.quotas as { used: number }[])[0]!.used).toBe(
      3,
    );

    await redis.kill();
    try {
      // Each node: half of the 10 per minute, on its own counters.
      expect((await burst([a!], 8)).filter((r) => r.status === 200).length).toBe(5);
      expect((await burst([b!], 8)).filter((r) => r.status === 200).length).toBe(5);
      const ready = await admin(a!, "GET", "/readyz");
      expect(ready.status).toBe(200);
      expect(ready.body.status).toBe("degraded");
      expect(ready.body.detail).toContain("The shared counters (Redis) cannot be reached");
      expect(await metric(a!, "gatehouse_cluster_store_healthy")).toBe(0);
      expect(await metric(a!, "gatehouse_cluster_fallback_decisions_total", '{mode="local"}')).toBe(8);
      const explained = await admin(a!, "POST", "/explain", {
        key: "acme-key",
        method: "GET",
        path: "/v1/items",
      });
      expect(explained.body.counters).toEqual({ decidedBy: "local", nodes: 2 });
      expect(a!.stderr()).toContain('"shared counters unreachable; limits are decided without Redis"');
    } finally {
      await redis.restart();
    }

    // Redis came back empty; each node adds what it counted alone to what they had both seen.
    for (const n of [a!, b!])
      await until(async () => (await admin(n, "GET", "/readyz")).body.status === "ready");
    expect(a!.stderr()).toContain('"shared counters reachable again"');
    for (const n of [a!, b!]) {
      expect(
        ((await admin(n, "GET", "/tenants/acme/quota")).body.quotas as { used: number }[])[0]!.used,
      ).toBe(13);
    }
    // The window holds the ten units admitted alone: shared counting refuses on both nodes.
    expect((await burst([a!, b!], 2)).map((r) => r.status)).toEqual([429, 429]);
    await until(async () => (await metric(b!, "gatehouse_cluster_nodes")) === 2);
    const explained = await admin(b!, "POST", "/explain", {
      key: "acme-key",
      method: "GET",
      path: "/v1/items",
    });
    expect(explained.body.counters).toEqual({ decidedBy: "redis", nodes: 2 });
  }, 60_000);
});

describe("no Redis to reach, from the start", () => {
  test("closed refuses requests with limits with 503 problem+json; open serves them uncounted; both degraded", async () => {
    // A port nothing listens on.
    const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const nowhere = `redis://127.0.0.1:${probe.port}`;
    probe.stop(true);
    const lines: string[] = [];
    const log: Log = (_level, msg) => lines.push(msg);
    const yaml = (mode: string) => `version: 1
cluster: { redis: "${nowhere}", onStoreError: ${mode} }
upstreams: { echo: { mock: echo } }
plans:
  metered: { limits: [{ limit: 5, window: 1m }], rules: [{ allow: "* /**" }] }
  free: { rules: [{ allow: "* /**" }] }
routes: [{ match: "* /v1/**", upstream: echo }]
tenants:
  acme: { plan: metered, keys: [{ id: acme-key, secret: ${KEY} }] }
  other: { plan: free, keys: [{ id: other-key, secret: other-secret-0001 }] }
`;
    const closed = startTestGateway(yaml("closed"), { log });
    const open = startTestGateway(yaml("open"));
    try {
      await closed.sharedCounters!.ready;
      await open.sharedCounters!.ready;
      const get = (url: string, key = KEY) => fetch(`${url}/v1/items`, { headers: { "x-api-key": key } });
      const refused = await get(closed.dataUrl);
      expect(refused.status).toBe(503);
      expect(refused.headers.get("content-type")).toBe("application/problem+json");
      expect(refused.headers.get("retry-after")).toBe("1");
      expect(((await refused.json()) as { type: string }).type).toBe(
        "urn:gatehouse:problem:service-unavailable",
      );
      // A tenant without limits has nothing to decide in Redis.
      expect((await get(closed.dataUrl, "other-secret-0001")).status).toBe(200);
      for (let i = 0; i < 8; i++) {
        const r = await get(open.dataUrl);
        expect(r.status).toBe(200);
        expect(r.headers.get("ratelimit")).toBeNull();
      }
      for (const gw of [closed, open]) {
        const ready = (await (await fetch(`${gw.adminUrl}/readyz`)).json()) as { status: string };
        expect(ready.status).toBe("degraded");
      }
      expect(lines).toContain("shared counters unreachable; limits are decided without Redis");
    } finally {
      await closed.close();
      await open.close();
    }
  });
});
