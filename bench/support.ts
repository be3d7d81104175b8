/**
 * What the load benchmarks (run.ts, cluster.ts, threads.ts) share: a working directory whose child
 * processes end with the benchmark, wrk runs parsed, and CPU time read from /proc.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
export const fmt = (n: number, digits = 2) => n.toFixed(digits);

/** A temporary directory, removed with every process spawned in it when the benchmark exits. */
export function benchDir(prefix: string) {
  const work = mkdtempSync(join(tmpdir(), prefix));
  const children: Bun.Subprocess[] = [];
  process.on("exit", () => {
    for (const c of children) c.kill();
    rmSync(work, { recursive: true, force: true });
  });
  const spawn = (cmd: string[], env: Record<string, string> = {}, cwd = work): Bun.Subprocess => {
    const p = Bun.spawn(cmd, { cwd, env: { ...process.env, ...env }, stdout: "ignore", stderr: "ignore" });
    children.push(p);
    return p;
  };
  return { work, spawn };
}

/** Installs a Debian package when its binary is missing (as root), or exits saying what is needed. */
export function need(binary: string, pkg = binary): void {
  if (Bun.which(binary)) return;
  const r = Bun.spawnSync(["sh", "-c", `apt-get update -qq && apt-get install -y -qq ${pkg}`], {
    stdout: "ignore",
  });
  if (r.exitCode !== 0 || !Bun.which(binary)) {
    console.error(`this benchmark needs ${binary}: apt-get install ${pkg}`);
    process.exit(2);
  }
}

/** Waits for `url` to answer 200; returns how long that took, in ms. */
export async function waitFor(
  url: string,
  headers: Record<string, string> = {},
  limitMs = 30_000,
): Promise<number> {
  const started = performance.now();
  for (;;) {
    try {
      const r = await fetch(url, { headers });
      await r.arrayBuffer();
      if (r.status === 200) return performance.now() - started;
    } catch {}
    if (performance.now() - started > limitMs) throw new Error(`${url} did not answer 200 in time`);
    await Bun.sleep(1);
  }
}

export interface WrkResult {
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  non2xx: number;
}

/** One wrk run (one thread) against `port` with the request script `script`; latencies in ms. */
export function wrk(o: { port: number; secs: number; script: string; connections?: number }): WrkResult {
  const r = Bun.spawnSync(
    [
      "wrk",
      "-t1",
      `-c${o.connections ?? 64}`,
      `-d${o.secs}s`,
      "--latency",
      "-s",
      o.script,
      `http://127.0.0.1:${o.port}/`,
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
    p50: ms(/ 50%\s+(\S+)/.exec(out)?.[1] ?? "0ms"),
    p99: ms(/ 99%\s+(\S+)/.exec(out)?.[1] ?? "0ms"),
    requests: Number(/(\d+) requests in/.exec(out)?.[1] ?? 0),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0),
  };
}

/** utime + stime, in ms, from a /proc stat line (clock ticks of 10 ms). */
function statCpu(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** CPU ms a process has used, ended threads included. */
export function cpuMs(pid: number): number {
  return statCpu(readFileSync(`/proc/${pid}/stat`, "utf8"));
}

/** CPU ms each live thread of a process has used, by thread id, with the thread's name. */
export function threadCpu(pid: number): Map<number, { name: string; ms: number }> {
  const out = new Map<number, { name: string; ms: number }>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
    } catch {
      continue; // the thread ended between the listing and the read
    }
    out.set(Number(tid), {
      name: stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")),
      ms: statCpu(stat),
    });
  }
  return out;
}

/** The whole machine's busy and idle CPU time in ms, from the first line of /proc/stat. */
export function machineCpu(): { busy: number; idle: number } {
  const ticks = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = ticks[3]! + ticks[4]!; // idle and iowait
  return { busy: (ticks.reduce((a, b) => a + b, 0) - idle) * 10, idle: idle * 10 };
}

/**
 * The benchmarks' gateway.yaml: `tenants` tenants with `keysPerTenant` keys each (key-<t>-<k>), one
 * plan with two rules, two sliding windows and a monthly quota, all far above the load.
 */
export function gatewayYaml(o: {
  port: number;
  db: string;
  tenants: number;
  keysPerTenant: number;
  /** The upstream's definition, e.g. `{ url: "http://127.0.0.1:9100" }`. */
  upstream: string;
  /** More `server:` settings, e.g. `threads: 2`. */
  server?: string;
  /** A `cluster:` section's value. */
  cluster?: string;
}): string {
  const lines = [
    "version: 1",
    `server: { listen: 127.0.0.1:${o.port}, admin: 127.0.0.1:0${o.server ? `, ${o.server}` : ""} }`,
    `database: ${o.db}`,
    ...(o.cluster ? [`cluster: ${o.cluster}`] : []),
    `upstreams: { up: ${o.upstream} }`,
    "plans:",
    "  bench:",
    "    limits: [{ limit: 1000000000, window: 1m }, { limit: 100000000, window: 1s, by: key }]",
    "    quota: { limit: 1000000000000, period: month }",
    '    rules: [{ allow: "* /v1/**" }, { deny: "* /v1/admin/**" }]',
    'routes: [{ match: "* /v1/**", upstream: up }]',
    "tenants:",
  ];
  for (let t = 0; t < o.tenants; t++) {
    const keys = Array.from(
      { length: o.keysPerTenant },
      (_, k) => `{ id: k${t}-${k}, secret: key-${t}-${k} }`,
    );
    lines.push(`  t${t}: { plan: bench, keys: [${keys.join(", ")}] }`);
  }
  return `${lines.join("\n")}\n`;
}

/** A wrk script at `path` that cycles through `count` keys named key-<tenant>-0. */
export function writeKeysScript(path: string, count: number): void {
  writeFileSync(
    path,
    `local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/v1/items?page=1", { ["X-Api-Key"] = "key-" .. (n % ${count}) .. "-0" })
end
`,
  );
}
