/**
 * `npm run bench`: gatehouse measured against references run on the same machine in the same run,
 * reported as ratios. Timings on a shared 2-core machine vary by ±20% between runs, so throughput
 * alternates the peers over several rounds and reports the median of the per-round ratios.
 *
 *   1. throughput, p99 and CPU per request: gatehouse (key auth, rules, two sliding windows, a
 *      quota, usage rows) against a bare Bun fetch proxy, against that proxy writing gatehouse's
 *      usage row for each request (what the row alone costs), and against gatehouse with one of its
 *      performance changes undone (bench/peers/gatehouse-variant.ts; each pair's ratio is that
 *      change's effect), all in front of the same upstream, loaded by wrk; then every usage row is
 *      counted, to show none was lost at that load
 *   2. start-up: process start to first proxied response for the compiled binary with 1,000 tenants
 *      and 10,000 keys, cold (new database) and warm (restart), against a minimal Bun.serve binary;
 *      and the ephemeral start: the shipped gateway.yaml on --db :memory:, beside a file database
 *   3. memory: resident size with 100,000 keys and 10,000 tenants that all sent traffic, 8 s after
 *      the traffic (and 0.5 s after, while the heap still holds its garbage)
 *   4. the limits, usage and config-watch micro-benchmarks (bench/limits.ts, bench/usage.ts with
 *      the usage writer's A/B rounds, bench/watch.ts)
 *   5. cluster: a node deciding its limits in Redis against the same node on in-process counters
 *      (bench/cluster.ts; needs redis-server too)
 *   6. threads: server.threads 1 against 2, CPU per request per data-plane thread (bench/threads.ts)
 *
 * Needs wrk (Debian package `wrk`); run as root it installs it when missing.
 *   usage: bun bench/run.ts [--seconds 5] [--rounds 3] [--only throughput,startup,memory,micro,cluster,threads]
 */
import { Database } from "bun:sqlite";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  benchDir,
  cpuMs,
  fmt,
  gatewayYaml,
  machineCpu,
  median,
  need,
  threadCpu,
  type WrkResult,
  waitFor,
  writeKeysScript,
  wrk,
} from "./support.ts";

const root = join(import.meta.dir, "..");
const bun = process.execPath;
const { values: args } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    seconds: { type: "string", default: "5" },
    rounds: { type: "string", default: "3" },
    only: { type: "string", default: "throughput,startup,memory,micro,cluster,threads" },
  },
});
const seconds = Number(args.seconds);
const rounds = Number(args.rounds);
const only = new Set(args.only.split(","));
const { work, spawn } = benchDir("gatehouse-bench-");
const keysScript = join(work, "keys.lua");

async function stop(p: Bun.Subprocess): Promise<void> {
  p.kill("SIGTERM");
  await p.exited;
}

/**
 * CPU time in ms of a process by thread: "event loop" for the main thread, else the thread's name
 * (Bun's "HTTP Client", the usage writer's "Worker", JIT and GC helpers); and "process", the whole
 * process's, which also counts threads that have ended since (Bun's fetch starts short-lived ones: a
 * sum over the live threads misses up to a third of a fetch proxy's CPU).
 */
function roleCpu(pid: number): Map<string, number> {
  const out = new Map<string, number>([["process", cpuMs(pid)]]);
  for (const [tid, t] of threadCpu(pid)) {
    const name = tid === pid ? "event loop" : t.name;
    out.set(name, (out.get(name) ?? 0) + t.ms);
  }
  return out;
}

/**
 * µs of CPU per request between two roleCpu snapshots: the event loop, Bun's HTTP client thread,
 * the usage writer, and "other" (the rest of the process: GC and JIT helpers, ended threads).
 */
function cpuPerRequest(before: Map<string, number>, after: Map<string, number>, requests: number) {
  const us = (name: string) => (((after.get(name) ?? 0) - (before.get(name) ?? 0)) * 1000) / requests;
  const out = new Map<string, number>();
  let named = 0;
  for (const name of ["event loop", "HTTP Client", "Worker"]) {
    out.set(name, us(name));
    named += us(name);
  }
  out.set("other", us("process") - named);
  return out;
}

interface Peer {
  port: number;
  start: () => Bun.Subprocess;
  /** For a gatehouse: the database whose rows are counted afterwards. */
  db?: string;
}

/**
 * gatehouse with one performance change undone, beside gatehouse as it is: each pair's ratio in the
 * same rounds is that change's effect.
 */
const LEVERS = [
  ["gh: fetch client", "the HTTP/1.1 upstream client (against Bun's fetch)"],
  ["gh: timer each", "deadline lists (against a timer per deadline)"],
  ["gh: 2,000 rows", "usage batches of 10,000 rows or 1 s (against 2,000 rows or 200 ms)"],
] as const;

const loadAverage = () => readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");

async function throughput(): Promise<void> {
  need("wrk");
  console.log(`\n## Throughput: 64 connections, ${seconds}s per peer, ${rounds} alternating rounds`);
  console.log(`load average before: ${loadAverage()}`);
  const upstream = spawn([bun, join(import.meta.dir, "peers/upstream.ts")], { PORT: "19100" });
  await waitFor("http://127.0.0.1:19100/");
  writeKeysScript(keysScript, 100);
  const gatehouse = (name: string, port: number, variant: string, usage = "") => {
    const db = join(work, `${name}.db`);
    const yamlPath = join(work, `${name}.yaml`);
    writeFileSync(
      yamlPath,
      gatewayYaml({
        port,
        db,
        tenants: 100,
        keysPerTenant: 1,
        upstream: "{ url: http://127.0.0.1:19100 }",
      }) + usage,
    );
    const start = variant
      ? () =>
          spawn([bun, join(import.meta.dir, "peers/gatehouse-variant.ts")], {
            CONFIG: yamlPath,
            VARIANT: variant,
          })
      : () => spawn([bun, join(root, "src/main.ts"), "serve", "--config", yamlPath]);
    return { port, start, db };
  };
  const peers: Record<string, Peer> = {
    "bun-proxy": {
      port: 19201,
      start: () =>
        spawn([bun, join(import.meta.dir, "peers/bun-proxy.ts")], {
          PORT: "19201",
          UPSTREAM: "http://127.0.0.1:19100",
        }),
    },
    // The bare proxy plus gatehouse's usage row, written the same way: what the row alone costs.
    "proxy+usage": {
      port: 19202,
      start: () =>
        spawn([bun, join(import.meta.dir, "peers/bun-proxy-usage.ts")], {
          PORT: "19202",
          UPSTREAM: "http://127.0.0.1:19100",
          DB: join(work, "proxy-usage.db"),
        }),
    },
    gatehouse: gatehouse("gatehouse", 19206, ""),
    "gh: fetch client": gatehouse("gh-fetch", 19207, "fetch"),
    "gh: timer each": gatehouse("gh-timers", 19208, "timers"),
    "gh: 2,000 rows": gatehouse("gh-2000", 19209, "", "usage: { flushRows: 2000, flushInterval: 200ms }\n"),
  };
  const names = Object.keys(peers);
  const results: Record<string, WrkResult[]> = {};
  const cpu: Record<string, Map<string, number>[]> = {};
  const machine: Record<string, { us: number; idle: number }[]> = {};
  for (const name of names) {
    results[name] = [];
    cpu[name] = [];
    machine[name] = [];
  }
  let served = 0;
  for (let round = 0; round < rounds; round++) {
    for (const name of names) {
      const peer = peers[name]!;
      const p = peer.start();
      await waitFor(`http://127.0.0.1:${peer.port}/v1/items`, { "x-api-key": "key-1-0" });
      wrk({ port: peer.port, secs: 1, script: keysScript }); // warm-up
      const before = roleCpu(p.pid);
      const m0 = machineCpu();
      const r = wrk({ port: peer.port, secs: seconds, script: keysScript });
      const m1 = machineCpu();
      cpu[name]!.push(cpuPerRequest(before, roleCpu(p.pid), r.requests));
      const busy = m1.busy - m0.busy;
      const idle = m1.idle - m0.idle;
      machine[name]!.push({ us: (busy * 1000) / r.requests, idle: idle / (busy + idle) });
      results[name]!.push(r);
      await stop(p);
      if (name === "gatehouse") served += r.requests;
    }
  }
  console.log(`load average after: ${loadAverage()}`);
  const pad = Math.max(...names.map((n) => n.length)) + 2;
  console.log(`${"peer".padEnd(pad)}req/s (median)   p50 ms   p99 ms   non-2xx`);
  for (const name of names) {
    const rs = results[name]!;
    console.log(
      `${name.padEnd(pad)}${fmt(median(rs.map((r) => r.rps)), 0).padStart(14)}` +
        `${fmt(median(rs.map((r) => r.p50))).padStart(9)}${fmt(median(rs.map((r) => r.p99))).padStart(9)}` +
        `${String(rs.reduce((n, r) => n + r.non2xx, 0)).padStart(10)}`,
    );
  }
  // Where each peer's CPU went, per request, by thread.
  const groups = ["event loop", "HTTP Client", "Worker", "other"];
  console.log(
    `\nCPU µs per request (median)${" ".repeat(Math.max(0, pad - 27))}${groups.map((g) => g.padStart(12)).join("")}       total`,
  );
  const totals: Record<string, number> = {};
  for (const name of names) {
    const per = groups.map((g) => median(cpu[name]!.map((m) => m.get(g) ?? 0)));
    totals[name] = median(cpu[name]!.map((m) => [...m.values()].reduce((a, b) => a + b, 0)));
    console.log(
      `${name.padEnd(Math.max(pad, 27))}${per.map((v) => fmt(v, 1).padStart(12)).join("")}${fmt(totals[name]!, 1).padStart(12)}`,
    );
  }
  // With the cores this busy, throughput follows the whole machine's CPU per request, the load
  // generator's and the upstream's included, not any one thread's.
  console.log("\nWhole machine (wrk, upstream, peer), median: CPU µs per request   idle share");
  for (const name of names) {
    const us = median(machine[name]!.map((m) => m.us));
    const idle = median(machine[name]!.map((m) => m.idle));
    console.log(`${name.padEnd(29)}${fmt(us, 1).padStart(11)}${`${fmt(idle * 100, 0)}%`.padStart(20)}`);
  }
  const perRound = (a: string, b: string, f: (r: WrkResult) => number) =>
    results[a]!.map((r, i) => f(r) / f(results[b]![i]!));
  const line = (label: string, xs: number[]) =>
    console.log(`${label}, per round: ${xs.map((x) => fmt(x)).join(", ")}; median ${fmt(median(xs))}`);
  for (const name of names.filter((n) => n !== "bun-proxy")) {
    console.log(
      `\n${name} / bun-proxy process CPU per request: ${fmt(totals[name]! / totals["bun-proxy"]!)}`,
    );
    line(
      `${name} / bun-proxy throughput`,
      perRound(name, "bun-proxy", (r) => r.rps),
    );
    line(
      `${name} / bun-proxy p99 latency`,
      perRound(name, "bun-proxy", (r) => r.p99),
    );
  }
  console.log("\n### Each change's effect: gatehouse ÷ gatehouse with that change undone, same rounds");
  for (const [variant, what] of LEVERS) {
    console.log(`\n${what}:`);
    line(
      "  throughput",
      perRound("gatehouse", variant, (r) => r.rps),
    );
    line(
      "  p99 latency",
      perRound("gatehouse", variant, (r) => r.p99),
    );
    const cpuRatio = cpu.gatehouse!.map((m, i) => sum(m) / sum(cpu[variant]![i]!));
    line("  process CPU per request", cpuRatio);
  }

  // Every request gatehouse answered (warm-ups and readiness probes included) must have left a row.
  const sqlite = new Database(peers.gatehouse!.db!, { readonly: true });
  const rows = (sqlite.query("select count(*) as n from usage").get() as { n: number }).n;
  sqlite.close();
  const gatehouseSeconds = rounds * seconds;
  console.log(
    `\nusage rows: ${rows} written for ≥${served} measured requests (+ warm-ups); ` +
      `${fmt(served / gatehouseSeconds, 0)} rows/s sustained at full load; ${rows >= served ? "none lost" : `${served - rows} LOST`}`,
  );
  await stop(upstream);
}

const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

function buildBinary(out: string): void {
  const script = (
    JSON.parse(require("node:fs").readFileSync(join(root, "package.json"), "utf8")) as {
      scripts: { build: string };
    }
  ).scripts.build;
  const argv = script.replace("dist/gatehouse", out).split(" ").slice(1);
  const r = Bun.spawnSync([bun, ...argv], { cwd: root, stdout: "ignore", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`build failed: ${r.stderr}`);
}

async function startup(): Promise<void> {
  console.log("\n## Start-up: process start to first proxied 200, compiled binary, median of 5");
  const dir = join(work, "startup");
  mkdirSync(dir);
  const binary = join(dir, "gatehouse");
  buildBinary(binary);
  writeFileSync(
    join(dir, "gateway.yaml"),
    gatewayYaml({
      port: 19406,
      db: "./startup.db",
      tenants: 1000,
      keysPerTenant: 10,
      upstream: "{ mock: echo }",
    }),
  );
  // The reference: the smallest Bun.serve program, compiled the same way.
  const helloSrc = join(dir, "hello.ts");
  writeFileSync(
    helloSrc,
    'Bun.serve({ port: 19406, hostname: "127.0.0.1", fetch: () => new Response("ok") });\n',
  );
  Bun.spawnSync(
    [bun, "build", helloSrc, "--compile", "--bytecode", "--minify", "--outfile", join(dir, "hello")],
    { stdout: "ignore" },
  );

  const time = async (cmd: string[]) => {
    const started = performance.now();
    const p = spawn(cmd, {}, dir);
    await waitFor("http://127.0.0.1:19406/v1/items", { "x-api-key": "key-999-9" });
    const ms = performance.now() - started;
    await stop(p);
    return ms;
  };
  const cold: number[] = [];
  const warm: number[] = [];
  const hello: number[] = [];
  for (let i = 0; i < 5; i++) {
    rmSync(join(dir, "startup.db"), { force: true });
    rmSync(join(dir, "startup.db-wal"), { force: true });
    rmSync(join(dir, "startup.db-shm"), { force: true });
    cold.push(await time([binary, "serve"]));
    warm.push(await time([binary, "serve"]));
    hello.push(await time([join(dir, "hello")]));
  }
  console.log(`minimal Bun.serve binary: ${fmt(median(hello), 1)} ms (the floor on this machine)`);
  console.log(
    `gatehouse, 1,000 tenants / 10,000 keys, warm restart: ${fmt(median(warm), 1)} ms (${fmt(median(warm) / median(hello), 1)}× the floor)`,
  );
  console.log(
    `gatehouse, same, new database (strict load + sync): ${fmt(median(cold), 1)} ms (${fmt(median(cold) / median(hello), 1)}× the floor)`,
  );

  // CI's case: the shipped gateway.yaml on an in-memory database, beside the same config on a new
  // database file (the same strict load and sync) and on one that synced it before (trusted start).
  console.log(
    "\n## Ephemeral start: the shipped gateway.yaml, process start to first proxied 200, median of 7",
  );
  const shipped = join(dir, "shipped");
  mkdirSync(shipped);
  writeFileSync(join(shipped, "gateway.yaml"), readFileSync(join(root, "gateway.yaml")));
  const serveArgs = ["serve", "--listen", "127.0.0.1:19406", "--admin", "127.0.0.1:19407"];
  const timeShipped = async (cmd: string[]) => {
    const started = performance.now();
    const p = spawn(cmd, {}, shipped);
    await waitFor("http://127.0.0.1:19406/v1/items", { "x-api-key": "gh_demo_acme_0001" });
    const ms = performance.now() - started;
    await stop(p);
    return ms;
  };
  const memory: number[] = [];
  const fresh: number[] = [];
  const restart: number[] = [];
  const floor: number[] = [];
  for (let i = 0; i < 7; i++) {
    for (const f of ["e.db", "e.db-wal", "e.db-shm"]) rmSync(join(shipped, f), { force: true });
    memory.push(await timeShipped([binary, ...serveArgs, "--db", ":memory:"]));
    fresh.push(await timeShipped([binary, ...serveArgs, "--db", "./e.db"]));
    restart.push(await timeShipped([binary, ...serveArgs, "--db", "./e.db"]));
    floor.push(await time([join(dir, "hello")]));
  }
  const f = median(floor);
  console.log(`minimal Bun.serve binary: ${fmt(f, 1)} ms`);
  for (const [name, runs] of [
    ["--db :memory:", memory],
    ["new database file", fresh],
    ["database file, restart", restart],
  ] as const) {
    console.log(
      `${name.padEnd(24)}${fmt(median(runs), 1).padStart(7)} ms (${fmt(median(runs) / f, 1)}× the floor)`,
    );
  }
  console.log(
    `--db :memory: ÷ new database file: ${fmt(median(memory) / median(fresh))}; ÷ restart: ${fmt(median(memory) / median(restart))}`,
  );
}

function rssKb(pid: number): number {
  const status = require("node:fs").readFileSync(`/proc/${pid}/status`, "utf8") as string;
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
}

async function memory(): Promise<void> {
  need("wrk");
  console.log("\n## Memory: resident size after every tenant has sent traffic");
  const upstream = spawn([bun, join(import.meta.dir, "peers/upstream.ts")], { PORT: "19100" });
  await waitFor("http://127.0.0.1:19100/");
  // Resident size after every tenant has sent traffic, first right after a cold start (a new database:
  // strict load and full sync, whose garbage the heap may still hold), then after a restart, which
  // takes the trusted path and is the steady state.
  const measure = async (tenants: number, keysPerTenant: number) => {
    const yamlPath = join(work, `memory-${tenants}.yaml`);
    writeFileSync(
      yamlPath,
      gatewayYaml({
        port: 19506,
        db: join(work, `memory-${tenants}.db`),
        tenants,
        keysPerTenant,
        upstream: "{ url: http://127.0.0.1:19100 }",
      }),
    );
    writeKeysScript(keysScript, tenants);
    const run = async () => {
      const p = spawn([bun, join(root, "src/main.ts"), "serve", "--config", yamlPath]);
      // A new database: 100,000 keys take the strict load and a full sync first.
      await waitFor("http://127.0.0.1:19506/v1/items", { "x-api-key": "key-0-0" }, 300_000);
      // Long enough that every tenant's counters exist (wrk cycles through all of them).
      wrk({ port: 19506, secs: Math.max(3, Math.ceil(tenants / 5000)), script: keysScript });
      // Right after the traffic the heap still holds its garbage; the collector has run a few
      // seconds later (and the last-used times have been flushed): that is the steady state.
      await Bun.sleep(500);
      const busy = rssKb(p.pid);
      await Bun.sleep(7_500);
      const settled = rssKb(p.pid);
      await stop(p);
      return { busy, settled };
    };
    const cold = await run();
    const warm = await run();
    return { cold, warm };
  };
  const mib = (kb: number) => fmt(kb / 1024, 1);
  const small = await measure(10, 1);
  const large = await measure(10_000, 10);
  console.log("resident MiB, after a restart, 8 s after the traffic (0.5 s after; after a cold start)");
  for (const [label, m] of [
    ["10 tenants, 10 keys:         ", small],
    ["10,000 tenants, 100,000 keys:", large],
  ] as const) {
    console.log(`${label}  ${mib(m.warm.settled)} (${mib(m.warm.busy)}; ${mib(m.cold.settled)})`);
  }
  console.log(
    `difference per key, after a restart (key map, tenant views, counters of 10,000 active tenants): ${fmt(((large.warm.settled - small.warm.settled) * 1024) / 100_000, 0)} bytes`,
  );
  await stop(upstream);
}

function micro(): void {
  for (const file of ["limits.ts", "usage.ts", "watch.ts"]) {
    console.log(`\n## bench/${file}`);
    Bun.spawnSync([bun, join(import.meta.dir, file)], { stdout: "inherit", stderr: "inherit", cwd: root });
  }
}

console.log(`gatehouse benchmarks (bun ${Bun.version}, ${require("node:os").cpus().length} cores)`);
if (only.has("throughput")) await throughput();
if (only.has("startup")) await startup();
if (only.has("memory")) await memory();
if (only.has("micro")) micro();
if (only.has("cluster")) {
  Bun.spawnSync(
    [bun, join(import.meta.dir, "cluster.ts"), "--seconds", String(seconds), "--rounds", String(rounds)],
    {
      stdout: "inherit",
      stderr: "inherit",
      cwd: root,
    },
  );
}
if (only.has("threads")) {
  Bun.spawnSync(
    [bun, join(import.meta.dir, "threads.ts"), "--seconds", String(seconds), "--rounds", String(rounds)],
    { stdout: "inherit", stderr: "inherit", cwd: root },
  );
}
process.exit(0);
