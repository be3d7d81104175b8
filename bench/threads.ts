/**
 * server.threads: 1 against 2, in alternating rounds of one run, reported as ratios: throughput, p99
 * latency, and CPU per request, in total and per data-plane thread (read per thread from /proc). The
 * config is the throughput benchmark's (100 tenants, two sliding windows and a monthly quota each,
 * usage rows on), so with 2 threads every request also takes the shared counters' lock.
 *
 * Needs wrk (Debian package); run as root it installs it when missing.
 *   usage: bun bench/threads.ts [--seconds 5] [--rounds 3] [--threads 2]
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";

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
const work = mkdtempSync(join(tmpdir(), "gatehouse-bench-threads-"));
const children: Bun.Subprocess[] = [];
process.on("exit", () => {
  for (const c of children) c.kill();
  rmSync(work, { recursive: true, force: true });
});

const UPSTREAM = 19710;
const GATEHOUSE = 19711;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (n: number, digits = 2) => n.toFixed(digits);

function needWrk(): void {
  if (Bun.which("wrk")) return;
  const r = Bun.spawnSync(["sh", "-c", "apt-get update -qq && apt-get install -y -qq wrk"], {
    stdout: "ignore",
  });
  if (r.exitCode !== 0 || !Bun.which("wrk")) {
    console.error("the threads benchmark needs wrk: apt-get install wrk");
    process.exit(2);
  }
}

function spawn(cmd: string[], env: Record<string, string> = {}): Bun.Subprocess {
  const p = Bun.spawn(cmd, {
    cwd: work,
    env: { ...process.env, ...env },
    stdout: "ignore",
    stderr: "ignore",
  });
  children.push(p);
  return p;
}

async function waitFor(url: string, headers: Record<string, string> = {}): Promise<void> {
  for (let i = 0; i < 3000; i++) {
    try {
      const r = await fetch(url, { headers });
      await r.arrayBuffer();
      if (r.status === 200) return;
    } catch {}
    await Bun.sleep(10);
  }
  throw new Error(`${url} did not answer 200 in time`);
}

interface WrkResult {
  rps: number;
  p99: number;
  requests: number;
}

function wrk(secs: number): WrkResult {
  const r = Bun.spawnSync(
    [
      "wrk",
      "-t1",
      "-c64",
      `-d${secs}s`,
      "--latency",
      "-s",
      join(work, "keys.lua"),
      `http://127.0.0.1:${GATEHOUSE}/`,
    ],
    { stdout: "pipe" },
  );
  const out = r.stdout.toString();
  const ms = (v: string) => {
    const m = /^([\d.]+)(us|ms|s)$/.exec(v)!;
    return Number(m[1]) * (m[2] === "us" ? 0.001 : m[2] === "s" ? 1000 : 1);
  };
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0),
    p99: ms(/ 99%\s+(\S+)/.exec(out)?.[1] ?? "0ms"),
    requests: Number(/(\d+) requests in/.exec(out)?.[1] ?? 0),
  };
}

/** CPU ms per thread of a process, by thread id, with the thread's name. */
function threadCpu(pid: number): Map<number, { name: string; ms: number }> {
  const out = new Map<number, { name: string; ms: number }>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
    } catch {
      continue;
    }
    const close = stat.lastIndexOf(")");
    const fields = stat.slice(close + 2).split(" ");
    out.set(Number(tid), {
      name: stat.slice(stat.indexOf("(") + 1, close),
      ms: (Number(fields[11]) + Number(fields[12])) * 10,
    });
  }
  return out;
}

function machineBusy(): number {
  const ticks = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  return (ticks.reduce((a, b) => a + b, 0) - ticks[3]! - ticks[4]!) * 10;
}

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
  const lines = [
    "version: 1",
    `server: { listen: 127.0.0.1:${GATEHOUSE}, admin: 127.0.0.1:0, threads: ${threads} }`,
    `database: ${join(work, `threads-${threads}.db`)}`,
    `upstreams: { up: { url: http://127.0.0.1:${UPSTREAM} } }`,
    "plans:",
    "  bench:",
    "    limits: [{ limit: 1000000000, window: 1m }, { limit: 100000000, window: 1s, by: key }]",
    "    quota: { limit: 1000000000000, period: month }",
    '    rules: [{ allow: "* /v1/**" }, { deny: "* /v1/admin/**" }]',
    'routes: [{ match: "* /v1/**", upstream: up }]',
    "tenants:",
  ];
  for (let t = 0; t < 100; t++)
    lines.push(`  t${t}: { plan: bench, keys: [{ id: k${t}, secret: key-${t}-0 }] }`);
  return `${lines.join("\n")}\n`;
}

needWrk();
console.log(
  `\n## Threads: server.threads 1 against ${many}, 64 connections, ${seconds}s per peer, ${rounds} alternating rounds`,
);
writeFileSync(
  join(work, "keys.lua"),
  `local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/v1/items?page=1", { ["X-Api-Key"] = "key-" .. (n % 100) .. "-0" })
end
`,
);
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
    wrk(1); // warm-up
    const before = threadCpu(p.pid);
    const m0 = machineBusy();
    const r = wrk(seconds);
    const machine = ((machineBusy() - m0) * 1000) / r.requests;
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
