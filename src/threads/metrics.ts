/**
 * /metrics with data-plane threads: each thread counts its own requests (metrics/index.ts, no
 * sharing on the hot path); the main thread asks every thread for its counts when /metrics is
 * scraped or the dashboard reads them, and sums them into one Metrics that the registry renders.
 */
import { type Metrics, type Readings, RouteStats, TenantStats, UpstreamStats } from "../metrics/index.ts";

type Arrays<T> = { [K in keyof T]: Float64Array };

export interface MetricsDump {
  readonly tenants: [label: string, stats: Arrays<TenantStats>][];
  readonly routes: [label: string, stats: Arrays<RouteStats>][];
  readonly upstreams: [label: string, stats: Arrays<UpstreamStats>][];
  /** Requests this thread has counted (its share of the traffic). */
  readonly requests: number;
  readonly keyCache: { entries: number; hits: number; misses: number };
}

const copy = <T extends object>(s: T) =>
  Object.fromEntries(Object.entries(s).map(([k, v]) => [k, (v as Float64Array).slice()])) as Arrays<T>;

/** A thread's counts, copied (the thread keeps counting into its own). */
export function dumpMetrics(
  metrics: Metrics,
  keyCache: { entries: number; hits: number; misses: number },
): MetricsDump {
  let requests = 0;
  for (const s of metrics.stats.values()) for (const n of s.requests) requests += n;
  return {
    tenants: [...metrics.stats].map(([label, s]) => [label, copy(s)]),
    routes: [...metrics.routes].map(([label, s]) => [label, copy(s)]),
    upstreams: [...metrics.upstreams].map(([label, s]) => [label, copy(s)]),
    requests,
    keyCache,
  };
}

function addInto<T extends object>(
  into: Map<string, T>,
  make: () => T,
  dump: [string, Arrays<T>][],
  sign: 1 | -1,
) {
  for (const [label, arrays] of dump) {
    let s = into.get(label);
    if (s === undefined) {
      s = make();
      into.set(label, s);
    }
    for (const [name, values] of Object.entries(arrays) as [keyof T, Float64Array][]) {
      const target = s[name] as unknown as Float64Array;
      for (let i = 0; i < values.length; i++) target[i]! += sign * values[i]!;
    }
  }
}

/**
 * The threads' counts summed. Labels are bounded per thread (metrics/index.ts), so the sum has at
 * most threads × the bound. A reset (prom-client's resetMetrics) remembers the sums so far and
 * subtracts them from later ones.
 */
export class MergedMetrics implements Metrics {
  readonly stats = new Map<string, TenantStats>();
  readonly routes = new Map<string, RouteStats>();
  readonly upstreams = new Map<string, UpstreamStats>();
  /** Requests each thread counted, by thread index. */
  perThread: number[] = [];
  keyCache = { entries: 0, hits: 0, misses: 0 };
  private baseline: MetricsDump[] = [];
  private last: MetricsDump[] = [];

  constructor(readonly readings: Readings) {}

  /** Replaces the sums with those of `dumps` (one per thread). */
  merge(dumps: readonly MetricsDump[]): void {
    this.last = [...dumps];
    this.stats.clear();
    this.routes.clear();
    this.upstreams.clear();
    for (const [dumps_, sign] of [
      [dumps, 1],
      [this.baseline, -1],
    ] as const) {
      for (const d of dumps_) {
        addInto(this.stats, () => new TenantStats(), d.tenants, sign);
        addInto(this.routes, () => new RouteStats(), d.routes, sign);
        addInto(this.upstreams, () => new UpstreamStats(), d.upstreams, sign);
      }
    }
    this.perThread = dumps.map((d) => d.requests);
    this.keyCache = { entries: 0, hits: 0, misses: 0 };
    for (const d of dumps) {
      this.keyCache.entries += d.keyCache.entries;
      this.keyCache.hits += d.keyCache.hits;
      this.keyCache.misses += d.keyCache.misses;
    }
  }

  observe(): void {
    throw new Error("requests are counted by the data-plane threads, not the main thread");
  }

  upstreamFailed(): void {
    throw new Error("upstream failures are counted by the data-plane threads, not the main thread");
  }

  reset(): void {
    this.baseline = this.last;
    this.merge(this.last);
  }
}
