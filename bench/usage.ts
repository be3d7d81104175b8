/**
 * Usage metering benchmark: `bun bench/usage.ts [rows]` (default 1,000,000).
 *
 * Writes the rows through the real flush path (UsageWriter → one immediate transaction per flushRows
 * batch, raw rows plus rollups) into a file database in WAL mode, then measures the database size,
 * GET /usage through the Elysia plugin for each groupBy, and export throughput.
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Elysia } from "elysia";
import { usagePlugin } from "../src/admin/usage/plugin.ts";
import { openDb } from "../src/db/open.ts";
import { ManualClock } from "../src/lib/clock.ts";
import { silentLog } from "../src/lib/log.ts";
import { prng } from "../src/lib/prng.ts";
import type { Scheduler } from "../src/lib/scheduler.ts";
import { GROUP_BYS } from "../src/usage/query.ts";
import { UsageRetention } from "../src/usage/retention.ts";
import { rowPath, type UsageRow } from "../src/usage/row.ts";
import { createUsageService } from "../src/usage/service.ts";
import { createBatchWriter } from "../src/usage/store.ts";
import { UsageWriter } from "../src/usage/writer.ts";

const N = Number(process.argv[2] ?? 1_000_000);
const HOURS = 24;
const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 0, 1);
/** The default usage.flushRows (usage/config.ts). */
const FLUSH_ROWS = 10_000;

const dir = mkdtempSync(join(tmpdir(), "gatehouse-bench-usage-"));
const never: Scheduler = { after: () => () => {}, every: () => () => {} };

/**
 * n requests spread evenly from T0 over `spanMs`, in arrival order: 20 tenants (a few busy, most
 * quiet) × 3 keys, 6 routes, 16 statuses, 5% unauthenticated.
 */
function generate(n: number, spanMs: number, seed: number): UsageRow[] {
  const rand = prng(seed);
  const routes = [
    "* /v1/**",
    "GET /v1/items/:id",
    "POST /v1/items",
    "POST /v1/reports/**",
    "GET /v1/search",
    "* /v2/**",
  ];
  const statuses = [200, 200, 200, 200, 200, 200, 200, 200, 201, 204, 304, 400, 404, 429, 500, 502];
  const rows: UsageRow[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const ts = T0 + Math.floor((i / n) * spanMs);
    const anon = rand() < 0.05;
    const tenant = `tenant-${String(Math.floor(rand() ** 2 * 20)).padStart(2, "0")}`;
    const status = anon ? 401 : statuses[Math.floor(rand() * statuses.length)]!;
    const refused = status === 401 || status === 429 || status === 404;
    const route = status === 401 || status === 404 ? null : routes[Math.floor(rand() * routes.length)]!;
    rows[i] = {
      ts,
      requestId: Bun.randomUUIDv7("hex", ts),
      tenantId: anon ? null : tenant,
      keyId: anon ? null : `${tenant}-k${Math.floor(rand() * 3)}`,
      route,
      method: route?.startsWith("POST") ? "POST" : "GET",
      path: `/v1/items/${Math.floor(rand() * 100_000)}`,
      status,
      outcome:
        status === 401
          ? "rejected:unauthorized"
          : status === 429
            ? "rejected:rate_limited"
            : status >= 500
              ? "upstream_error"
              : "ok",
      cost: refused ? 0 : route === "POST /v1/reports/**" ? 10 : 1,
      bytesIn: route?.startsWith("POST") ? Math.floor(rand() * 4000) : 0,
      bytesOut: Math.floor(rand() * 20_000),
      latencyMs: Math.round(Math.exp(1 + rand() * 6)),
      upstreamMs: refused ? null : Math.round(Math.exp(rand() * 6) * 1000) / 1000,
      wouldRefuse: null,
    };
  }
  return rows;
}

/** The usage indexes before the one on (ts, tenant_id) replaced them. */
const TWO_INDEXES = [
  "DROP INDEX usage_ts_tenant",
  "CREATE INDEX usage_tenant_ts ON usage (tenant_id, ts)",
  "CREATE INDEX usage_ts ON usage (ts)",
];

function writeAll(
  path: string,
  synchronous: "normal" | "full",
  rows: UsageRow[],
  o: { flushRows?: number; schema?: readonly string[] } = {},
) {
  const db = openDb(path, { synchronous });
  for (const sql of o.schema ?? []) db.sqlite.exec(sql);
  const flushRows = o.flushRows ?? FLUSH_ROWS;
  const clock = new ManualClock(T0);
  const writer = new UsageWriter({
    write: createBatchWriter(db.sqlite),
    clock,
    log: silentLog,
    flushRows,
    flushIntervalMs: 1000,
    bufferRows: 10_000_000,
    scheduler: never,
  });
  let recordNs = 0;
  const started = performance.now();
  for (let i = 0; i < rows.length; i += flushRows) {
    const end = Math.min(rows.length, i + flushRows);
    const r0 = Bun.nanoseconds();
    for (let j = i; j < end; j++) writer.record(rows[j]!);
    recordNs += Bun.nanoseconds() - r0;
    writer.flush();
  }
  const ms = performance.now() - started - recordNs / 1e6;
  return { db, rowsPerSec: rows.length / (ms / 1000), recordNs: recordNs / rows.length };
}

const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
function timeRuns(runs: number, fn: () => unknown): number {
  fn(); // warm-up: statement preparation, JIT
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    fn();
    times.push(performance.now() - t);
  }
  return p50(times);
}
async function timeRunsAsync(runs: number, fn: () => Promise<unknown>): Promise<number> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  return p50(times);
}
const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits });

/** The usage row's path as it was built before (regular expressions), for the A/B below. */
function pathBefore(path: string, headers: Headers): string {
  let out = path;
  const cut = out.search(/[?#]/);
  if (cut >= 0) out = out.slice(0, cut);
  const secrets: string[] = [];
  const auth = headers.get("authorization");
  const bearer = auth ? /^\s*Bearer\s+(\S+)/i.exec(auth)?.[1] : undefined;
  const apiKey = headers.get("x-api-key")?.trim();
  for (const x of [bearer, apiKey]) if (x && x.length >= 8) secrets.push(x);
  for (const secret of secrets) if (out.includes(secret)) out = out.split(secret).join("[redacted]");
  return out;
}

/** The row's path on the request path: built now, against as it was built before. */
function rowAB(): void {
  const headers = new Headers({ authorization: "Bearer gh_live_0123456789abcdef", "user-agent": "bench" });
  const time = (build: () => unknown) => {
    for (let i = 0; i < 200_000; i++) build();
    const t = Bun.nanoseconds();
    for (let i = 0; i < 1_000_000; i++) build();
    return (Bun.nanoseconds() - t) / 1_000_000;
  };
  const ns = { now: [] as number[], before: [] as number[] };
  for (let round = 0; round < 3; round++) {
    ns.now.push(time(() => rowPath("/v1/items/42", headers)));
    ns.before.push(time(() => pathBefore("/v1/items/42", headers)));
  }
  const now = p50(ns.now);
  const before = p50(ns.before);
  console.log("\n== the usage row's path, built per request (median of 3 alternating rounds)");
  console.log(
    `now ${fmt(now)} ns; with regular expressions, as before, ${fmt(before)} ns; now ÷ before ${fmt(now / before, 2)}`,
  );
}

async function main() {
  const total = performance.now();
  rowAB();
  console.log(
    `usage bench: ${fmt(N)} rows over ${HOURS} h, flushRows ${FLUSH_ROWS}, file database in WAL mode\n`,
  );

  // 1. Writer throughput, with the real flush path. A busy gateway fills a batch within one minute;
  // the 24-hour dataset below is the opposite case, each batch spanning minutes of quiet traffic.
  const DENSE = Math.min(N, 200_000);
  const RPS = 20_000;
  const dense = generate(DENSE, (DENSE / RPS) * 1000, 2);
  console.log(
    `== writer: record() + flush() of raw rows and rollups, one transaction per ${FLUSH_ROWS} rows`,
  );
  writeAll(join(dir, "warm-up.db"), "normal", dense.slice(0, 20_000)).db.close(); // JIT, page cache
  // Alternating rounds, best of each: other work on the machine makes single runs noisy.
  const rate = { normal: 0, full: 0 };
  let recordNs = Number.POSITIVE_INFINITY;
  let denseBytesPerRow = 0;
  for (let round = 0; round < 2; round++) {
    for (const mode of ["normal", "full"] as const) {
      const file = join(dir, `dense-${mode}-${round}.db`);
      const run = writeAll(file, mode, dense);
      rate[mode] = Math.max(rate[mode], run.rowsPerSec);
      recordNs = Math.min(recordNs, run.recordNs);
      run.db.sqlite.exec("PRAGMA wal_checkpoint(TRUNCATE)");
      denseBytesPerRow = statSync(file).size / DENSE;
      run.db.close();
      rmSync(file, { force: true });
    }
  }
  console.log(`record() on the request path:      ${fmt(recordNs)} ns/row`);
  console.log(`busy (${fmt(RPS)} req/s), synchronous=normal: ${fmt(rate.normal)} rows/s`);
  console.log(
    `busy (${fmt(RPS)} req/s), synchronous=full:   ${fmt(rate.full)} rows/s (${fmt(rate.full / rate.normal, 2)}× normal)`,
  );

  // A/B, alternating rounds: each change to the writer against what it replaced, same rows.
  console.log(`\n== writer A/B: µs per row at ${fmt(RPS)} req/s, median of 3 alternating rounds`);
  const variants = {
    now: { flushRows: FLUSH_ROWS },
    "batches of 2,000 rows": { flushRows: 2000 },
    "(tenant_id, ts) and (ts) indexes": { flushRows: FLUSH_ROWS, schema: TWO_INDEXES },
  } as const;
  const perRow: Record<string, number[]> = Object.fromEntries(Object.keys(variants).map((n) => [n, []]));
  for (let round = 0; round < 3; round++) {
    for (const [name, o] of Object.entries(variants)) {
      const file = join(dir, `ab-${round}.db`);
      const run = writeAll(file, "normal", dense, o);
      perRow[name]!.push(1e6 / run.rowsPerSec);
      run.db.close();
      for (const f of [file, `${file}-wal`, `${file}-shm`]) rmSync(f, { force: true });
    }
  }
  const now = p50(perRow.now!);
  console.log(`writer now (one index, batches of ${fmt(FLUSH_ROWS)}): ${fmt(now, 2)} µs/row`);
  for (const name of Object.keys(variants).filter((n) => n !== "now")) {
    const before = p50(perRow[name]!);
    console.log(`  against ${name}: ${fmt(before, 2)} µs/row; now ÷ before ${fmt(now / before, 2)}`);
  }

  let t = performance.now();
  const rows = generate(N, HOURS * HOUR, 1);
  const { db, rowsPerSec } = writeAll(join(dir, "usage.db"), "normal", rows);
  console.log(
    `quiet (${fmt(N / (HOURS * 3600), 1)} req/s over ${HOURS} h), synchronous=normal: ${fmt(rowsPerSec)} rows/s (${fmt(N)} rows, ${fmt((performance.now() - t) / 1000, 1)} s with generation)`,
  );

  // 2. Size.
  db.sqlite.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  const bytes = statSync(join(dir, "usage.db")).size;
  const rollupRows = (db.sqlite.query("SELECT count(*) AS n FROM usage_rollup").get() as { n: number }).n;
  console.log("\n== size");
  console.log(
    `database file:                     ${fmt(bytes / 1e6, 1)} MB = ${fmt(bytes / N, 0)} MB per million rows (${fmt(bytes / N)} B/row)`,
  );
  try {
    const parts = db.sqlite
      .query("SELECT name, SUM(pgsize) AS bytes FROM dbstat GROUP BY name ORDER BY bytes DESC")
      .all() as { name: string; bytes: number }[];
    for (const p of parts.filter((x) => x.bytes > 100_000)) {
      console.log(`  ${p.name.padEnd(34)}${fmt(p.bytes / 1e6, 1)} MB`);
    }
  } catch {
    console.log("  (dbstat not available: no per-table breakdown)");
  }
  console.log(
    `rollup rows:                       ${fmt(rollupRows)} (${fmt(N / rollupRows, 1)} raw rows per rollup row)`,
  );
  console.log(
    `busy dataset, for comparison:      ${fmt(denseBytesPerRow)} B/row = ${fmt(denseBytesPerRow, 0)} MB per million rows (rollups nearly free)`,
  );

  // 3. GET /usage over the whole range, through the Elysia plugin.
  const usage = createUsageService({ sqlite: db.sqlite, clock: new ManualClock(T0 + HOURS * HOUR) });
  const app = new Elysia().use(usagePlugin({ usage }));
  // Unaligned edges on purpose: they are read from minute rollups and raw rows.
  const from = T0 + 17_123;
  const to = T0 + HOURS * HOUR - 23_456;
  const get = async (query: string) => {
    const res = await app.handle(new Request(`http://localhost/usage?from=${from}&to=${to}&${query}`));
    if (res.status !== 200) throw new Error(`GET /usage?${query}: ${res.status} ${await res.text()}`);
    return res.json();
  };
  console.log(`\n== GET /usage over ${fmt(N)} rows, ${HOURS} h with unaligned edges (p50 of 7 runs)`);
  for (const groupBy of GROUP_BYS) {
    const all = await timeRunsAsync(7, () => get(`groupBy=${groupBy}`));
    const one = await timeRunsAsync(7, () => get(`groupBy=${groupBy}&tenant=tenant-00`));
    console.log(
      `groupBy=${groupBy.padEnd(7)} all tenants ${fmt(all, 1).padStart(6)} ms   one tenant ${fmt(one, 1).padStart(6)} ms`,
    );
  }
  // The naive alternative, for comparison: GROUP BY over the raw rows, with no percentiles at all.
  const naive = db.sqlite.prepare(
    "SELECT route, count(*), sum(cost), sum(bytes_in), sum(bytes_out), sum(status >= 400 OR outcome <> 'ok'), " +
      "max(latency_ms) FROM usage WHERE ts >= ? AND ts < ? GROUP BY route",
  );
  const naiveMs = timeRuns(3, () => naive.all(from, to));
  const rollupMs = await timeRunsAsync(7, () => get("groupBy=route"));
  console.log(
    `raw-row GROUP BY route (no percentiles), for comparison: ${fmt(naiveMs, 1)} ms → rollups are ${fmt(naiveMs / rollupMs, 0)}× faster`,
  );

  // 4. Export throughput.
  console.log("\n== export (streamed)");
  for (const format of ["csv", "ndjson"] as const) {
    Bun.gc(true);
    const heap0 = process.memoryUsage().heapUsed;
    let peak = heap0;
    let gcMs = 0;
    t = performance.now();
    const stream = usage.exportUsage({ format, granularity: "raw", from: T0, to: T0 + HOURS * HOUR });
    let out = 0;
    let chunks = 0;
    for await (const chunk of stream) {
      out += chunk.byteLength;
      // Live memory, not garbage: a forced collection now and then (its time is not counted).
      if (++chunks % 200 === 0) {
        const g = performance.now();
        Bun.gc(true);
        peak = Math.max(peak, process.memoryUsage().heapUsed);
        gcMs += performance.now() - g;
      }
    }
    const s = (performance.now() - t - gcMs) / 1000;
    console.log(
      `raw ${format.padEnd(6)} ${fmt(N / s)} rows/s, ${fmt(out / 1e6 / s, 1)} MB/s (${fmt(out / 1e6, 1)} MB); live heap +${fmt((peak - heap0) / 1e6, 1)} MB at most`,
    );
  }
  // What the single (ts, tenant_id) index costs reads: one quiet tenant's raw rows, found among all
  // tenants' index entries, against the (tenant_id, ts) index it replaced, on the same database.
  const quiet = "tenant-19";
  const exportOne = () =>
    new Response(
      usage.exportUsage({
        format: "csv",
        granularity: "raw",
        tenant: quiet,
        from: T0,
        to: T0 + HOURS * HOUR,
      }),
    ).text();
  const oneNow = await timeRunsAsync(3, exportOne);
  db.sqlite.exec("CREATE INDEX usage_tenant_ts ON usage (tenant_id, ts)");
  const oneBefore = await timeRunsAsync(3, exportOne);
  db.sqlite.exec("DROP INDEX usage_tenant_ts");
  console.log(
    `raw export of one quiet tenant (${quiet}): ${fmt(oneNow, 1)} ms; with the former (tenant_id, ts) index ${fmt(oneBefore, 1)} ms (${fmt(oneNow / oneBefore, 1)}×)`,
  );
  for (const granularity of ["hour", "day"] as const) {
    const ms = await timeRunsAsync(3, () =>
      new Response(usage.exportUsage({ format: "csv", granularity, from: T0, to: T0 + HOURS * HOUR })).text(),
    );
    console.log(`totals per tenant and ${granularity.padEnd(5)} ${fmt(ms, 1)} ms`);
  }

  // 5. Retention: deleting the first two hours in batches; the longest batch is the longest stall.
  let longest = 0;
  let last = performance.now();
  const retention = new UsageRetention({
    sqlite: db.sqlite,
    clock: new ManualClock(T0 + 2 * HOUR + 90 * 24 * HOUR),
    log: silentLog,
    retentionMs: 90 * 24 * HOUR,
    yieldNow: async () => {
      const now = performance.now();
      longest = Math.max(longest, now - last);
      await new Promise((r) => setImmediate(r));
      last = performance.now();
    },
  });
  t = performance.now();
  const swept = await retention.sweep();
  const sweptMs = performance.now() - t;
  console.log("\n== retention");
  console.log(
    `deleted ${fmt(swept.usage)} rows and ${fmt(swept.rollups)} rollups in ${fmt(sweptMs)} ms (${fmt(swept.usage / (sweptMs / 1000))} rows/s), longest batch ${fmt(Math.max(longest, performance.now() - last), 1)} ms`,
  );

  db.close();
  rmSync(dir, { recursive: true, force: true });
  console.log(`\ntotal ${fmt((performance.now() - total) / 1000, 1)} s`);
}

await main();
