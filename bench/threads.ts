/**
 * server.threads: 1 against 2, in alternating rounds of one run, reported as ratios: throughput, p99
 * latency, and CPU per request, in total and per data-plane thread (read per thread from /proc). The
 * config is the throughput benchmark's (100 tenants, two sliding windows and a monthly quota each,
 * usage rows on), so with 2 threads every request also takes the shared counters' lock.
 *
 * Needs wrk (Debian package); run as root it installs it when missing.
 *   usage: bun bench/threads.ts [--seconds 5] [--rounds 3] [--threads 2]
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  benchDir,
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
    threads: { type: "string", default: "2" },
  },
});
const seconds = Number(args.seconds);
const rounds = Number(args.rounds);
const many = Number(args.threads);
const { work, spawn } = benchDir("gatehouse-bench-threads-");
const keysScript = join(work, "keys.lua");

const UPSTREAM = 19710;
const GATEHOUSE = 19711;

/**
 * µs per request by role. Bun names every Worker thread "Worker": the writer thread is started
 * before the data-plane threads, so it has the lowest id of them; with one thread the data plane
 * is the event loop itself.
 */
function roles(
  pid: number,
  before: ReturnType<typeof threadCpu>,
  after: ReturnType<typeof threadCpu>,
  n: number,
  requests: number,
) {
  const us = (tid: number) => (((after.get(tid)?.ms ?? 0) - (before.get(tid)?.ms ?? 0)) * 1000) / requests;
  const workers = [...after]
    .filter(([, t]) => t.name === "Worker")
    .map(([tid]) => tid)
    .sort((a, b) => a - b);
  const writer = workers[0]!;
  const data = n === 1 ? [pid] : workers.slice(1, 1 + n);
  const perData = data.map(us);
  const client = [...after].filter(([, t]) => t.name.startsWith("HTTP")).reduce((s, [tid]) => s + us(tid), 0);
  let total = 0;
  for (const tid of after.keys()) total += us(tid);
  const dataTotal = perData.reduce((a, b) => a + b, 0);
  const main = n === 1 ? 0 : us(pid);
  return {
    data: dataTotal,
    perThread: perData,
    main,
    client,
    writer: us(writer),
    other: total - dataTotal - main - client - us(writer),
    total,
  };
}

function config(threads: number): string {
  return gatewayYaml({
    port: GATEHOUSE,
    db: join(work, `threads-${threads}.db`),
    tenants: 100,
    keysPerTenant: 1,
    upstream: `{ url: http://127.0.0.1:${UPSTREAM} }`,
    server: `threads: ${threads}`,
  });
}

need("wrk");
console.log(
  `\n## Threads: server.threads 1 against ${many}, 64 connections, ${seconds}s per peer, ${rounds} alternating rounds`,
);
writeKeysScript(keysScript, 100);
const upstream = spawn([bun, join(import.meta.dir, "peers/upstream.ts")], { PORT: String(UPSTREAM) });
await waitFor(`http://127.0.0.1:${UPSTREAM}/`);
const counts = [1, many];
for (const n of counts) writeFileSync(join(work, `threads-${n}.yaml`), config(n));
const results = new Map(
  counts.map((n) => [n, [] as { wrk: WrkResult; cpu: ReturnType<typeof roles>; machine: number }[]]),
);
for (let round = 0; round < rounds; round++) {
  for (const n of counts) {
    const p = spawn([bun, join(root, "src/main.ts"), "serve", "--config", join(work, `threads-${n}.yaml`)]);
    await waitFor(`http://127.0.0.1:${GATEHOUSE}/v1/items`, { "x-api-key": "key-1-0" });
    wrk({ port: GATEHOUSE, secs: 1, script: keysScript }); // warm-up
    const before = threadCpu(p.pid);
    const m0 = machineCpu().busy;
    const r = wrk({ port: GATEHOUSE, secs: seconds, script: keysScript });
    const machine = ((machineCpu().busy - m0) * 1000) / r.requests;
    results.get(n)!.push({ wrk: r, cpu: roles(p.pid, before, threadCpu(p.pid), n, r.requests), machine });
    p.kill("SIGTERM");
    await p.exited;
  }
}

const med = (
  n: number,
  f: (x: (typeof results extends Map<number, infer V> ? V : never)[number]) => number,
) => median(results.get(n)!.map(f));
console.log(
  "threads   req/s   p99 ms   CPU µs per request: data plane (per thread)   main   HTTP client   writer   other   process   machine",
);
for (const n of counts) {
  const per = Array.from({ length: n }, (_, i) =>
    fmt(
      med(n, (x) => x.cpu.perThread[i]!),
      1,
    ),
  ).join(" + ");
  console.log(
    `${String(n).padStart(7)}${fmt(
      med(n, (x) => x.wrk.rps),
      0,
    ).padStart(8)}${fmt(med(n, (x) => x.wrk.p99)).padStart(9)}` +
      `${fmt(
        med(n, (x) => x.cpu.data),
        1,
      ).padStart(25)} (${per})${fmt(
        med(n, (x) => x.cpu.main),
        1,
      ).padStart(9)}` +
      `${fmt(
        med(n, (x) => x.cpu.client),
        1,
      ).padStart(14)}${fmt(
        med(n, (x) => x.cpu.writer),
        1,
      ).padStart(9)}` +
      `${fmt(
        med(n, (x) => x.cpu.other),
        1,
      ).padStart(8)}${fmt(
        med(n, (x) => x.cpu.total),
        1,
      ).padStart(10)}` +
      `${fmt(
        med(n, (x) => x.machine),
        1,
      ).padStart(10)}`,
  );
}
const ratio = (
  f: (x: ReturnType<typeof results.get> extends (infer A)[] | undefined ? A : never) => number,
) => {
  const per = results.get(many)!.map((x, i) => f(x) / f(results.get(1)![i]!));
  return `${per.map((r) => fmt(r)).join(", ")}; median ${fmt(median(per))}`;
};
console.log(`\n${many} threads / 1, per round:`);
console.log(`  throughput                         ${ratio((x) => x.wrk.rps)}`);
console.log(`  p99 latency                        ${ratio((x) => x.wrk.p99)}`);
console.log(`  data-plane CPU per request         ${ratio((x) => x.cpu.data)}`);
console.log(`  process CPU per request            ${ratio((x) => x.cpu.total)}`);
console.log(`  whole machine's CPU per request    ${ratio((x) => x.machine)}`);
upstream.kill();
process.exit(0);
