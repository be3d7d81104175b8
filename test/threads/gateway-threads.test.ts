/**
 * A gateway with server.threads: 2 serving real requests on one port: limits exact across the
 * threads, every usage row written (also those still in flight at shutdown), control-API changes
 * and reloads served by every thread as soon as they are answered, /metrics and the control API
 * showing the sums, a failing thread stopping the gateway loudly, and what threads cannot run with.
 */
import { Database } from "bun:sqlite";
import { afterEach, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type RunningGateway, startGateway, startGatewayUnlocked } from "../../src/app.ts";
import { ConfigError } from "../../src/config/errors.ts";
import type { Log } from "../../src/lib/log.ts";
import { get, rawRequest } from "../support/raw-http.ts";

const TOKEN = "k7Qm2xVb9LpR4tZw8NcY3hJd";
const KEY = "acme-secret-0001";

const config = (extra = "", limit = 20, more = "") => `version: 1
server: { threads: 2, adminToken: ${TOKEN} }
${more}
upstreams: { echo: { mock: echo } }
plans:
  basic:
    limits: [{ limit: ${limit}, window: 1h }]
    quota: { limit: 1000, period: day }
    rules: [{ allow: "* /v1/**" }]
routes:
  - { match: "* /v1/**", upstream: echo }
${extra}
tenants:
  acme: { plan: basic, keys: [{ id: acme-key, secret: ${KEY} }] }
`;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function start(yaml: string, opts: { db?: string; log?: Log; env?: Record<string, string> } = {}) {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-threads-"));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const configPath = join(dir, "gateway.yaml");
  writeFileSync(configPath, yaml);
  const db = opts.db ?? join(dir, "gatehouse.db");
  const gw = await startGatewayUnlocked({
    configPath,
    db,
    listen: "127.0.0.1:0",
    admin: "127.0.0.1:0",
    env: opts.env ?? {},
    watchConfig: false,
    log: opts.log ?? (() => {}),
  });
  let stopped = false;
  cleanups.push(async () => {
    if (!stopped) await gw.stop();
  });
  const stop = async () => {
    stopped = true;
    await gw.stop();
  };
  return { gw, dir, configPath, db, stop };
}

/** `n` requests at once, each on a connection of its own, so the kernel spreads them over the threads. */
async function burst(gw: RunningGateway, n: number, path = "/v1/x", key = KEY) {
  return Promise.all(
    Array.from({ length: n }, async () => {
      const r = await fetch(`${gw.dataUrl}${path}`, { headers: { "x-api-key": key, connection: "close" } });
      await r.arrayBuffer();
      return r;
    }),
  );
}

const admin = (gw: RunningGateway, method: string, path: string, body?: unknown) =>
  fetch(`${gw.adminUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body ? { "content-type": "application/json" } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });

const statuses = (rs: Response[]) => {
  const counts: Record<number, number> = {};
  for (const r of rs) counts[r.status] = (counts[r.status] ?? 0) + 1;
  return counts;
};

describe("server.threads: 2", () => {
  test("limits exact across both threads; /metrics, quota routes, explain and the dashboard show the sums; every row and access-log line written", async () => {
    const accessLog = join(mkdtempSync(join(tmpdir(), "gatehouse-access-")), "access.log");
    cleanups.push(() => rmSync(join(accessLog, ".."), { recursive: true, force: true }));
    const { gw, db, stop } = await start(config("", 20, `log: { access: ${accessLog} }`));
    const first = await burst(gw, 30);
    const second = await burst(gw, 30);
    const all = [...first, ...second];
    expect(statuses(all)).toEqual({ 200: 20, 429: 40 });
    for (const r of all.filter((r) => r.status === 429)) {
      // An hour's window, in buckets of 3 minutes: the first admissions leave it in an hour and a bucket.
      expect(Number(r.headers.get("retry-after"))).toBeGreaterThan(3500);
      expect(Number(r.headers.get("retry-after"))).toBeLessThanOrEqual(3780);
      // Both threads' counts: the window full, the quota's 20 units counted once each.
      expect(r.headers.get("ratelimit")).toMatch(/^"20-per-1h";r=0;t=\d+, "quota-day";r=980;t=\d+$/);
    }

    const metrics = await (await admin(gw, "GET", "/metrics")).text();
    const sum = (name: string) =>
      metrics
        .split("\n")
        .filter((l) => l.startsWith(name))
        .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
    expect(sum("gatehouse_requests_total{")).toBe(60);
    expect(sum('gatehouse_refusals_total{tenant="acme",code="rate-limited"}')).toBe(40);
    // Both threads served (60 connections: the kernel gives each some).
    const perThread = metrics.split("\n").filter((l) => l.startsWith("gatehouse_thread_requests_total{"));
    expect(perThread).toHaveLength(2);
    for (const l of perThread) expect(Number(l.slice(l.lastIndexOf(" ") + 1))).toBeGreaterThan(0);

    const quota = (await (await admin(gw, "GET", "/tenants/acme/quota")).json()) as {
      quotas: { used: number }[];
    };
    expect(quota.quotas.map((q) => q.used)).toEqual([20]);
    const explained = (await (
      await admin(gw, "POST", "/explain", { key: "acme-key", method: "GET", path: "/v1/x" })
    ).json()) as { refusedBy: string; limits: { used: number }[] };
    expect(explained.refusedBy).toBe("limits");
    expect(explained.limits.map((c) => c.used)).toEqual([20, 20]);
    const overview = (await (await admin(gw, "GET", "/ui/api/overview")).json()) as {
      tenants: { refusals: Record<string, number>; quotas: { used: number }[] }[];
    };
    expect(overview.tenants[0]!.refusals).toEqual({ rate_limited: 40 });
    expect(overview.tenants[0]!.quotas.map((q) => q.used)).toEqual([20]);

    // A credit made through the control API changes the count the threads share (and is written).
    const credited = (await (await admin(gw, "POST", "/tenants/acme/quota/credit", { units: 5 })).json()) as {
      quotas: { used: number }[];
    };
    expect(credited.quotas.map((q) => q.used)).toEqual([15]);
    const explainedAfter = (await (
      await admin(gw, "POST", "/explain", { key: "acme-key", method: "GET", path: "/v1/x" })
    ).json()) as { limits: { used: number }[] };
    expect(explainedAfter.limits.map((c) => c.used)).toEqual([20, 15]);

    // Answered requests, then at once the stop: rows still batched in the threads are written too.
    const last = await burst(gw, 10);
    expect(statuses(last)).toEqual({ 429: 10 });
    await stop();
    const reader = new Database(db, { readonly: true });
    try {
      expect(reader.query("select count(*) as n from usage").get()).toEqual({ n: 70 });
      expect(reader.query("select used from quota_usage").all()).toEqual([{ used: 15 }]);
      const used = reader.query("select last_used_at from api_keys where id = 'acme-key'").get() as {
        last_used_at: number | null;
      };
      expect(used.last_used_at).not.toBeNull();
    } finally {
      reader.close();
    }
    // Both threads' lines, each whole, in the one file.
    const lines = readFileSync(accessLog, "utf8").trimEnd().split("\n");
    expect(lines).toHaveLength(70);
    expect(lines.filter((l) => JSON.parse(l).status === 429)).toHaveLength(50);
  });

  test("a key created, then revoked, through the control API, and a reload: every thread serves each as soon as it is answered", async () => {
    const { gw, configPath } = await start(config("", 100_000));
    // Traffic runs all along: every snapshot switch happens under it.
    let running = true;
    const background: number[] = [];
    const traffic = (async () => {
      while (running) background.push(...(await burst(gw, 4)).map((r) => r.status));
    })();
    const made = await admin(gw, "POST", "/tenants/acme/keys", { name: "ci" });
    expect(made.status).toBe(201);
    const { key, secret } = (await made.json()) as { key: { id: string }; secret: string };
    expect(statuses(await burst(gw, 12, "/v1/x", secret))).toEqual({ 200: 12 });
    expect((await admin(gw, "DELETE", `/keys/${key.id}`)).status).toBe(204);
    expect(statuses(await burst(gw, 12, "/v1/x", secret))).toEqual({ 401: 12 });

    // A route the file adds: 404 everywhere before the reload's answer, 200 everywhere after it.
    expect(statuses(await burst(gw, 6, "/v2/x"))).toEqual({ 404: 6 });
    writeFileSync(
      configPath,
      config('  - { match: "* /v2/**", upstream: echo }', 100_000).replace(
        '[{ allow: "* /v1/**" }]',
        '[{ allow: "* /v1/**" }, { allow: "* /v2/**" }]',
      ),
    );
    const reloaded = await admin(gw, "POST", "/config/reload");
    expect(reloaded.status).toBe(200);
    const { version } = (await reloaded.json()) as { version: number };
    expect(statuses(await burst(gw, 12, "/v2/x"))).toEqual({ 200: 12 });
    // Published for all at once: the version every thread reads is the one the answer named.
    expect(Atomics.load(new Int32Array(gw.threads!.memory.control), 0)).toBe(version);
    expect(gw.state.snapshot.version).toBe(version);
    running = false;
    await traffic;
    expect(background.length).toBeGreaterThan(0);
    expect(new Set(background)).toEqual(new Set([200]));
  });

  test("a real upstream through each thread's own HTTP/1.1 client: maxConnections is shared out, not multiplied", async () => {
    // The upstream takes a while to answer, so requests overlap and every pool fills up.
    const ports = new Set<number>();
    const upstream = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      async fetch(req, srv) {
        ports.add(srv.requestIP(req)!.port);
        await Bun.sleep(20);
        return Response.json({ path: new URL(req.url).pathname });
      },
    });
    cleanups.push(() => upstream.stop(true));
    const yaml = config("", 1000).replace(
      "upstreams: { echo: { mock: echo } }",
      `upstreams: { echo: { url: "http://127.0.0.1:${upstream.port}", maxConnections: 2 } }`,
    );
    const { gw } = await start(yaml);
    const answers = await burst(gw, 12);
    expect(statuses(answers)).toEqual({ 200: 12 });
    // Each of the two threads opens its half of the cap: one keep-alive connection apiece.
    expect(ports.size).toBeGreaterThan(0);
    expect(ports.size).toBeLessThanOrEqual(2);
    // Both threads carried requests (the kernel spreads connections over them), so both pools were used.
    const metrics = await (await admin(gw, "GET", "/metrics")).text();
    const perThread = [...metrics.matchAll(/^gatehouse_thread_requests_total\{thread="\d"\} (\d+)$/gm)].map(
      (m) => Number(m[1]),
    );
    expect(perThread.length).toBe(2);
    expect(perThread.every((n) => n > 0)).toBe(true);
  });

  test("with an HTTP proxy in gatehouse's environment, every thread sends through Bun's fetch, which honours it", async () => {
    // Told apart by what each client adds to a request without User-Agent: fetch its own, the
    // HTTP/1.1 client nothing. (fetch reads the proxy from the process's own environment, where
    // there is none: it goes direct.)
    const agents: (string | null)[] = [];
    const upstream = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch(req) {
        agents.push(req.headers.get("user-agent"));
        return Response.json({});
      },
    });
    cleanups.push(() => upstream.stop(true));
    const yaml = config("", 1000).replace(
      "upstreams: { echo: { mock: echo } }",
      `upstreams: { echo: { url: "http://127.0.0.1:${upstream.port}" } }`,
    );
    const { gw } = await start(yaml, { env: { HTTPS_PROXY: "http://proxy.invalid:3128" } });
    // Raw requests, without the User-Agent a fetch from this test would send (and gatehouse forward).
    const port = Number(new URL(gw.dataUrl).port);
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => rawRequest(port, get("/v1/x", [`X-Api-Key: ${KEY}`]))),
    );
    expect(answers.map((r) => r.status)).toEqual(Array(8).fill(200));
    expect(agents.length).toBe(8);
    expect(agents.every((a) => a?.startsWith("Bun/"))).toBe(true);
  });

  test("a thread that fails stops the gateway with a clear log line; what the other thread answered is written", async () => {
    const lines: string[] = [];
    const { gw, db, stop } = await start(config(), { log: (level, msg) => lines.push(`${level} ${msg}`) });
    expect(statuses(await burst(gw, 8))).toEqual({ 200: 8 });
    // A message the thread does not know: an uncaught error in it, as a bug would throw.
    gw.threads!.workerOf(1).postMessage({ type: "no-such-message" });
    const reason = await gw.fatal;
    expect(reason).toContain("data-plane thread 2 failed");
    expect(
      lines.some((l) => l.startsWith("error data-plane thread 2 failed") && l.includes("gatehouse stops")),
    ).toBe(true);
    await stop();
    const reader = new Database(db, { readonly: true });
    try {
      const { n } = reader.query("select count(*) as n from usage").get() as { n: number };
      // The failed thread's rows still batched may be lost with it; the other's are all there.
      expect(n).toBeGreaterThan(0);
      expect(n).toBeLessThanOrEqual(8);
    } finally {
      reader.close();
    }
  });

  test("an in-memory database: the threads' rows are written by the main thread", async () => {
    const { gw } = await start(config("", 100), { db: ":memory:" });
    expect(statuses(await burst(gw, 25))).toEqual({ 200: 25 });
    // Rows reach the main thread in batches, then its writer; read until they are all there.
    let requests = 0;
    for (let i = 0; i < 200 && requests < 25; i++) {
      const to = new Date(Date.now() + 3_600_000).toISOString();
      const report = (await (
        await admin(gw, "GET", `/usage?tenant=acme&from=2020-01-01T00:00:00Z&to=${to}&groupBy=status`)
      ).json()) as { total: { requests: number } };
      requests = report.total.requests;
      if (requests < 25) await Bun.sleep(25);
    }
    expect(requests).toBe(25);
  });
});

describe("what threads refuse", () => {
  test("test mode and the in-process gateway run on one thread: a located config error says so", async () => {
    const dir = mkdtempSync(join(tmpdir(), "gatehouse-threads-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const configPath = join(dir, "gateway.yaml");
    writeFileSync(configPath, config());
    const base = { configPath, db: ":memory:", listen: "127.0.0.1:0", admin: "127.0.0.1:0", env: {} };
    const located = async (f: () => unknown) => {
      try {
        await f();
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as ConfigError).message.replace(configPath, "gateway.yaml");
      }
      throw new Error("expected a ConfigError");
    };
    expect(await located(() => startGatewayUnlocked({ ...base, testMode: {} }))).toBe(
      "gateway.yaml:2:20 server.threads: test mode serves on one thread: its clock, moved by POST /clock, is this thread's\n" +
        "  hint: remove server.threads (or set it to 1) to run this config in test mode",
    );
    expect(await located(() => startGateway(base))).toBe(
      "gateway.yaml:2:20 server.threads: an in-process gateway (gatehouse test) serves on one thread: its clock and requests are this thread's\n" +
        "  hint: remove server.threads (or set it to 1) for this config, or test a running gatehouse with --target",
    );
  });
});
