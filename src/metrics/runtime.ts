/**
 * Process and runtime metrics: prom-client's default collectors that tell the truth under Bun, an
 * event-loop delay of our own and gatehouse_build_info.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { collectDefaultMetrics, Gauge, type Registry } from "prom-client";
import pkg from "../../package.json" with { type: "json" };

/**
 * The default metrics kept, each checked on Bun 1.4 (values against /proc, a blocked event loop and a
 * growing heap). Left out: process_heap_bytes (Linux's VmData: gigabytes of address space that
 * JavaScriptCore reserves), nodejs_active_* (empty under Bun), nodejs_heap_space_* (V8's heap spaces,
 * all zero), nodejs_gc_duration_seconds (never observed), nodejs_version_info (the Node.js version
 * Bun imitates; gatehouse_build_info names Bun's) and the nodejs_eventloop_lag_* gauges, which read
 * garbage (a minimum of 9.2e9 s, a mean of NaN) when no delay was sampled since the last scrape. Under
 * Bun every monitorEventLoopDelay() shares one histogram, and prom-client's lag gauge resets it on
 * each scrape; removed, it never runs, and eventLoopDelay() below is the one reader.
 */
const KEPT = new Set([
  "process_cpu_user_seconds_total",
  "process_cpu_system_seconds_total",
  "process_cpu_seconds_total",
  "process_start_time_seconds",
  "process_resident_memory_bytes",
  "process_virtual_memory_bytes",
  "process_open_fds",
  "process_max_fds",
  "nodejs_heap_size_total_bytes",
  "nodejs_heap_size_used_bytes",
  "nodejs_external_memory_bytes",
]);

export function runtimeMetrics(registry: Registry): void {
  new Gauge({
    name: "gatehouse_build_info",
    help: "Always 1; the labels name the gatehouse version and the Bun runtime it runs on.",
    labelNames: ["version", "bun_version"] as const,
    registers: [registry],
    collect() {
      this.set({ version: pkg.version, bun_version: Bun.version }, 1);
    },
  });
  collectDefaultMetrics({ register: registry });
  for (const m of registry.getMetricsAsArray()) {
    const { name } = m as unknown as { name: string };
    if (/^(process|nodejs)_/.test(name) && !KEPT.has(name)) registry.removeSingleMetric(name);
  }
  eventLoopDelay(registry);
}

/**
 * The event loop's delay since the previous scrape, sampled every 10 ms: what a timer waited beyond
 * its due time. Rendered only when there are samples (not within 10 ms of the previous scrape).
 */
function eventLoopDelay(registry: Registry): void {
  const delays = monitorEventLoopDelay({ resolution: 10 });
  delays.enable();
  let read: Record<string, number> | null = null;
  const stats = {
    min: () => delays.min,
    max: () => delays.max,
    mean: () => delays.mean,
    stddev: () => delays.stddev,
    p50: () => delays.percentile(50),
    p90: () => delays.percentile(90),
    p99: () => delays.percentile(99),
  };
  for (const [i, stat] of Object.keys(stats).entries()) {
    const name = `nodejs_eventloop_lag_${stat}_seconds`;
    registry.registerMetric({
      name,
      // The first of them reads the monitor for all and starts a new period.
      async get() {
        if (i === 0) {
          read = null;
          if (delays.count > 0) {
            read = Object.fromEntries(Object.entries(stats).map(([k, f]) => [k, f() / 1e9]));
          }
          delays.reset();
        }
        const values = read ? [{ labels: {}, value: read[stat]! }] : [];
        return {
          name,
          help: `The ${stat} event-loop delay since the previous scrape.`,
          type: "gauge",
          values,
          aggregator: "average",
        };
      },
      reset() {},
    } as never);
  }
}
