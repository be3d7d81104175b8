/**
 * A node deciding its limits in Redis (cluster.redis) against the same node on in-process counters,
 * in alternating rounds of one run, reported as ratios: throughput, p99 latency, and the CPU Redis
 * spends per request. The config is the throughput benchmark's (100 tenants, two sliding windows and
 * a monthly quota each); Redis is a local redis-server on loopback, as beside a node in production.
 *
 * Needs wrk and redis-server (Debian packages); run as root it installs them when missing.
 *   usage: bun bench/cluster.ts [--seconds 5] [--rounds 3]
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  benchDir,
  cpuMs,
  fmt,
  gatewayYaml,
  median,
  need,
  type WrkResult,
  waitFor,
  writeKeysScript,
  wrk,
} from "./support.ts";

const root = join(import.meta.dir, "..");
const bun = process.execPath;
const { values: args } = parseArgs({
  args: Bun.argv.slice(2),
  options: { seconds: { type: "string", default: "5" }, rounds: { type: "string", default: "3" } },
});
const seconds = Number(args.seconds);
const rounds = Number(args.rounds);
const { work, spawn } = benchDir("gatehouse-bench-cluster-");
const keysScript = join(work, "keys.lua");

const UPSTREAM = 19610;
const GATEHOUSE = 19611;
const REDIS = 19612;

function config(cluster: boolean): string {
  return gatewayYaml({
    port: GATEHOUSE,
    db: join(work, cluster ? "redis.db" : "memory.db"),
    tenants: 100,
    keysPerTenant: 1,
    upstream: `{ url: "http://127.0.0.1:${UPSTREAM}" }`,
    ...(cluster ? { cluster: `{ redis: "redis://127.0.0.1:${REDIS}" }` } : {}),
  });
}

need("wrk");
need("redis-server");
writeKeysScript(keysScript, 100);
writeFileSync(join(work, "memory.yaml"), config(false));
writeFileSync(join(work, "redis.yaml"), config(true));
const upstream = spawn([bun, join(import.meta.dir, "peers/upstream.ts")], { PORT: String(UPSTREAM) });
await waitFor(`http://127.0.0.1:${UPSTREAM}/`);
const redis = spawn([
  "redis-server",
  "--port",
  String(REDIS),
  "--bind",
  "127.0.0.1",
  "--save",
  "",
  "--appendonly",
  "no",
  "--dir",
  work,
]);

console.log(
  `\n## Cluster: one node on Redis against the same node on in-process counters, ${rounds} alternating rounds of ${seconds}s`,
);
const runs = { memory: [] as WrkResult[], redis: [] as WrkResult[] };
const nodeCpu = { memory: [] as number[], redis: [] as number[] };
const redisCpu: number[] = [];
for (let round = 0; round < rounds; round++) {
  for (const peer of ["memory", "redis"] as const) {
    const p = spawn([bun, join(root, "src/main.ts"), "serve", "--config", join(work, `${peer}.yaml`)]);
    await waitFor(`http://127.0.0.1:${GATEHOUSE}/v1/items`, { "x-api-key": "key-1-0" });
    wrk({ port: GATEHOUSE, secs: 1, script: keysScript }); // warm-up
    const before = cpuMs(redis.pid);
    const nodeBefore = cpuMs(p.pid);
    const r = wrk({ port: GATEHOUSE, secs: seconds, script: keysScript });
    nodeCpu[peer].push(((cpuMs(p.pid) - nodeBefore) * 1000) / r.requests);
    if (peer === "redis") redisCpu.push(((cpuMs(redis.pid) - before) * 1000) / r.requests);
    runs[peer].push(r);
    p.kill("SIGTERM");
    await p.exited;
  }
}
console.log("counters     req/s (median)   p99 ms   non-2xx   gatehouse CPU µs/request");
for (const peer of ["memory", "redis"] as const) {
  const rs = runs[peer];
  console.log(
    `${peer.padEnd(12)}${fmt(median(rs.map((r) => r.rps)), 0).padStart(14)}${fmt(median(rs.map((r) => r.p99))).padStart(9)}` +
      `${String(rs.reduce((n, r) => n + r.non2xx, 0)).padStart(10)}${fmt(median(nodeCpu[peer]), 1).padStart(27)}`,
  );
}
const ratios = runs.redis.map((r, i) => r.rps / runs.memory[i]!.rps);
const p99s = runs.redis.map((r, i) => r.p99 / runs.memory[i]!.p99);
console.log(
  `redis / memory throughput, per round: ${ratios.map((r) => fmt(r)).join(", ")}; median ${fmt(median(ratios))}`,
);
console.log(
  `redis / memory p99 latency, per round: ${p99s.map((r) => fmt(r)).join(", ")}; median ${fmt(median(p99s))}`,
);
console.log(`redis-server CPU per request (median): ${fmt(median(redisCpu), 1)} µs`);
upstream.kill();
redis.kill();
process.exit(0);
