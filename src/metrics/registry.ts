/**
 * The Prometheus registry GET /metrics renders, built over a Metrics' counts on a registry of our
 * own (never prom-client's global one, so two gateways in one process, as in tests, do not mix).
 */
import { Counter, Gauge, type Histogram, Registry } from "prom-client";
import { STORE_FAILURES } from "../cluster/redis/client.ts";
import type { ClusterReading } from "../cluster/redis/health.ts";
import { healthyStatus, STORE_FAULTS, type StoreStatus } from "../db/store-health.ts";
import { problemName } from "../gateway/problem.ts";
import { UPSTREAM_FAILURES } from "../gateway/upstream-failure.ts";
import {
  BUCKETS,
  CODES,
  type Metrics,
  OUTCOMES,
  type PostgresReading,
  STATUS_CLASSES,
  type TenantStats,
  UPSTREAM_BUCKETS,
  type UpstreamStats,
  WOULD_REFUSE,
} from "./index.ts";
import { runtimeMetrics } from "./runtime.ts";

const registries = new WeakMap<Metrics, Registry>();

/** Refusal label values are the problem types' names (`rate-limited`), as clients see them. */
const CODE_LABELS = CODES.map((c) => (c === "other" ? c : problemName(c)));

/**
 * The registry that renders `metrics` and the store's health (`store`, the writer thread's last
 * report); one per Metrics, built on first use.
 */
export function metricsRegistry(metrics: Metrics, store: () => StoreStatus = () => healthyStatus): Registry {
  let registry = registries.get(metrics);
  if (registry) return registry;
  registry = new Registry();
  registries.set(metrics, registry);
  const { stats } = metrics;
  // Counters are rebuilt from the arrays on every scrape: reset, then one inc per non-zero series.
  new Counter({
    name: "gatehouse_requests_total",
    help: "Requests handled by the data plane, by tenant, outcome class and status class.",
    labelNames: ["tenant", "outcome", "status_class"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [tenant, s] of stats) {
        for (let i = 0; i < s.requests.length; i++) {
          const n = s.requests[i]!;
          if (n === 0) continue;
          const outcome = OUTCOMES[Math.floor(i / STATUS_CLASSES.length)]!;
          const status_class = STATUS_CLASSES[i % STATUS_CLASSES.length]!;
          this.inc({ tenant, outcome, status_class }, n);
        }
      }
    },
  });
  new Counter({
    name: "gatehouse_refusals_total",
    help:
      "Requests the gateway refused, by tenant and refusal code: the name in the problem type " +
      "(urn:gatehouse:problem:<code>), e.g. rate-limited.",
    labelNames: ["tenant", "code"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [tenant, s] of stats) {
        for (let i = 0; i < s.refusals.length; i++) {
          if (s.refusals[i] !== 0) this.inc({ tenant, code: CODE_LABELS[i]! }, s.refusals[i]);
        }
      }
    },
  });
  new Counter({
    name: "gatehouse_would_refuse_total",
    help:
      "Requests a shadow rule, limit or quota would have refused (they were not refused), by tenant and " +
      "the code it would have given.",
    labelNames: ["tenant", "code"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [tenant, s] of stats) {
        for (let i = 0; i < s.wouldRefuse.length; i++) {
          if (s.wouldRefuse[i] !== 0)
            this.inc({ tenant, code: `would_refuse:${problemName(WOULD_REFUSE[i]!)}` }, s.wouldRefuse[i]);
        }
      }
    },
  });
  routeAndUpstreamMetrics(registry, metrics);
  storeMetrics(registry, store);
  readingMetrics(registry, metrics);
  const cluster = metrics.readings.cluster;
  if (cluster) clusterMetrics(registry, cluster);
  const postgres = metrics.readings.postgres;
  if (postgres) postgresMetrics(registry, postgres);
  // prom-client's Histogram cannot be given bucket counts, only single observations, so the
  // histograms are collectors of our own in the shape prom-client's registry renders.
  registry.registerMetric(
    histogramCollector({
      name: "gatehouse_request_duration_seconds",
      help: "Time from arrival to the end of the response, by tenant and outcome class.",
      bounds: BUCKETS,
      reset: () => metrics.reset(),
      series: function* () {
        for (const [tenant, s] of stats) yield* tenantSeries(tenant, s);
      },
    }) as unknown as Histogram,
  );
  registry.registerMetric(
    histogramCollector({
      name: "gatehouse_upstream_duration_seconds",
      help: "Time from sending a request upstream to the upstream's response headers, by upstream.",
      bounds: UPSTREAM_BUCKETS,
      reset: () => metrics.reset(),
      series: function* () {
        for (const [upstream, s] of metrics.upstreams) yield upstreamSeries(upstream, s);
      },
    }) as unknown as Histogram,
  );
  runtimeMetrics(registry);
  return registry;
}

function routeAndUpstreamMetrics(registry: Registry, metrics: Metrics): void {
  new Counter({
    name: "gatehouse_route_requests_total",
    help:
      "Requests by the route that matched (its match text from the config; _none before a route was " +
      "chosen), outcome class and status class.",
    labelNames: ["route", "outcome", "status_class"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [route, s] of metrics.routes) {
        for (let i = 0; i < s.requests.length; i++) {
          const n = s.requests[i]!;
          if (n === 0) continue;
          const outcome = OUTCOMES[Math.floor(i / STATUS_CLASSES.length)]!;
          const status_class = STATUS_CLASSES[i % STATUS_CLASSES.length]!;
          this.inc({ route, outcome, status_class }, n);
        }
      }
    },
  });
  new Counter({
    name: "gatehouse_upstream_responses_total",
    help: "Responses upstreams gave (their status, before any body failure), by upstream and status class.",
    labelNames: ["upstream", "status_class"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [upstream, s] of metrics.upstreams) {
        s.responses.forEach((n, i) => {
          if (n !== 0) this.inc({ upstream, status_class: STATUS_CLASSES[i]! }, n);
        });
      }
    },
  });
  new Counter({
    name: "gatehouse_upstream_failures_total",
    help:
      "Upstream requests that failed, by upstream and cause: connection_refused, connection_reset, " +
      "dns, tls, first_byte_timeout, idle_timeout, body_interrupted, invalid_response, other.",
    labelNames: ["upstream", "cause"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [upstream, s] of metrics.upstreams) {
        s.failures.forEach((n, i) => {
          if (n !== 0) this.inc({ upstream, cause: UPSTREAM_FAILURES[i]! }, n);
        });
      }
    },
  });
}

function storeMetrics(registry: Registry, store: () => StoreStatus): void {
  new Gauge({
    name: "gatehouse_store_healthy",
    help: "1 while the database accepts the writes traffic causes; 0 while they wait in memory.",
    registers: [registry],
    collect() {
      this.set(store().healthy ? 1 : 0);
    },
  });
  new Gauge({
    name: "gatehouse_store_fault",
    help: "1 for the current store fault (locked, full, readonly, io, gone, other); 0 for the others.",
    labelNames: ["reason"] as const,
    registers: [registry],
    collect() {
      const { fault } = store();
      for (const reason of STORE_FAULTS) this.set({ reason }, reason === fault ? 1 : 0);
    },
  });
  new Gauge({
    name: "gatehouse_usage_rows_buffered",
    help: "Usage rows waiting in memory for the database: the usage writer's queue (at most usage.bufferRows).",
    registers: [registry],
    collect() {
      this.set(store().buffered);
    },
  });
  new Counter({
    name: "gatehouse_usage_rows_dropped_total",
    help: "Usage rows lost because the buffer was full while the database refused writes.",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(store().dropped);
    },
  });
  new Counter({
    name: "gatehouse_usage_write_retries_total",
    help: "Batches of usage rows the database refused; each stays buffered and is retried with backoff.",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(store().retries);
    },
  });
  new Gauge({
    name: "gatehouse_store_writes_waiting",
    help: "Quota counters and key last-used times waiting in memory for the database.",
    registers: [registry],
    collect() {
      this.set(store().waiting);
    },
  });
}

/** Counts other parts of the gateway keep; a part that is absent renders as 0. */
function readingMetrics(registry: Registry, metrics: Metrics): void {
  const { readings } = metrics;
  new Counter({
    name: "gatehouse_config_reloads_total",
    help: "Reloads of gateway.yaml (file watch or POST /config/reload) by result: ok, or refused with errors.",
    labelNames: ["result"] as const,
    registers: [registry],
    collect() {
      this.reset();
      const r = readings.reloads?.() ?? { ok: 0, refused: 0 };
      this.inc({ result: "ok" }, r.ok);
      this.inc({ result: "refused" }, r.refused);
    },
  });
  const keyCache = () => readings.keyCache?.() ?? { entries: 0, hits: 0, misses: 0 };
  new Gauge({
    name: "gatehouse_key_cache_entries",
    help: "Presented keys cached with the key they hash to (cleared on every config change).",
    registers: [registry],
    collect() {
      this.set(keyCache().entries);
    },
  });
  new Counter({
    name: "gatehouse_key_cache_hits_total",
    help: "Key lookups answered from the cache, without hashing.",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(keyCache().hits);
    },
  });
  new Counter({
    name: "gatehouse_key_cache_misses_total",
    help: "Key lookups the cache could not answer: the key was hashed, or refused as malformed.",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(keyCache().misses);
    },
  });
  const accessLog = () => readings.accessLog?.() ?? { written: 0, dropped: 0 };
  new Counter({
    name: "gatehouse_access_log_lines_total",
    help: "Access-log lines handed to their destination (log.access).",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(accessLog().written);
    },
  });
  new Counter({
    name: "gatehouse_access_log_dropped_total",
    help: "Access-log lines dropped because the destination was too slow (over 1 MiB waiting) or failed.",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(accessLog().dropped);
    },
  });
  const { threads } = readings;
  if (threads) {
    new Counter({
      name: "gatehouse_thread_requests_total",
      help: "Requests each data-plane thread handled (server.threads above 1), by thread number from 1.",
      labelNames: ["thread"] as const,
      registers: [registry],
      collect() {
        this.reset();
        threads().forEach((n, i) => {
          this.inc({ thread: String(i + 1) }, n);
        });
      },
    });
  }
}

/** Cluster mode's PostgreSQL: only rendered when the gateway has it. */
function postgresMetrics(registry: Registry, reading: () => PostgresReading): void {
  const gauges: [string, string, (r: PostgresReading) => number][] = [
    [
      "gatehouse_cluster_postgres_reachable",
      "1 while PostgreSQL answers; 0 while this node serves its own copy of the shared objects.",
      (r) => (r.reachable ? 1 : 0),
    ],
    [
      "gatehouse_cluster_objects_version",
      "The version of the shared objects (tenants, keys, credentials) this node serves.",
      (r) => r.version,
    ],
    [
      "gatehouse_cluster_objects_waiting",
      "Shared objects this node's config cannot serve yet (a plan, upstream or credential it lacks).",
      (r) => r.waiting,
    ],
    [
      "gatehouse_cluster_config_files",
      "Distinct config files among the nodes alive in the last 15 s: 1 when every node runs the same.",
      (r) => r.configs,
    ],
    [
      "gatehouse_cluster_usage_rows_unshipped",
      "Usage rows in this node's database that PostgreSQL does not have yet (about).",
      (r) => r.unshipped,
    ],
  ];
  for (const [name, help, value] of gauges) {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(value(reading()));
      },
    });
  }
}

/** A cluster's shared counters: only rendered when the gateway has them. */
function clusterMetrics(registry: Registry, cluster: () => ClusterReading): void {
  new Gauge({
    name: "gatehouse_cluster_store_healthy",
    help: "1 while the shared counters (Redis) answer; 0 while limits are decided by cluster.onStoreError.",
    registers: [registry],
    collect() {
      this.set(cluster().healthy ? 1 : 0);
    },
  });
  new Gauge({
    name: "gatehouse_cluster_nodes",
    help: "Live nodes seen in Redis at the last heartbeat: what a local share divides each limit by.",
    registers: [registry],
    collect() {
      this.set(cluster().nodes);
    },
  });
  new Counter({
    name: "gatehouse_cluster_fallback_decisions_total",
    help: "Requests whose limits were decided without Redis, by cluster.onStoreError's mode: local, open or closed.",
    labelNames: ["mode"] as const,
    registers: [registry],
    collect() {
      this.reset();
      const { fallbacks } = cluster();
      for (const mode of ["local", "open", "closed"] as const) this.inc({ mode }, fallbacks[mode]);
    },
  });
  new Counter({
    name: "gatehouse_cluster_store_failures_total",
    help: "Calls to Redis that got no answer, by reason: timeout (cluster.redisTimeout), disconnected or error.",
    labelNames: ["reason"] as const,
    registers: [registry],
    collect() {
      this.reset();
      const { failures } = cluster();
      for (const reason of STORE_FAILURES) this.inc({ reason }, failures[reason]);
    },
  });
}

interface Sample {
  labels: Record<string, string | number>;
  value: number;
  metricName: string;
}

/** One labelled histogram: per-bucket counts (not yet cumulative), their sum and count. */
interface HistogramSeries {
  labels: Record<string, string>;
  buckets: ArrayLike<number>;
  sum: number;
  count: number;
}

function* tenantSeries(tenant: string, s: TenantStats): Generator<HistogramSeries> {
  for (let cls = 0; cls < OUTCOMES.length; cls++) {
    yield {
      labels: { tenant, outcome: OUTCOMES[cls]! },
      buckets: s.buckets.subarray(cls * BUCKETS.length, (cls + 1) * BUCKETS.length),
      sum: s.sum[cls]!,
      count: s.count[cls]!,
    };
  }
}

function upstreamSeries(upstream: string, s: UpstreamStats): HistogramSeries {
  return { labels: { upstream }, buckets: s.buckets, sum: s.sumCount[0]!, count: s.sumCount[1]! };
}

function histogramCollector(h: {
  name: string;
  help: string;
  bounds: readonly number[];
  /** registry.resetMetrics(): the counters are rebuilt from the same arrays, so all restart at 0. */
  reset: () => void;
  series: () => Iterable<HistogramSeries>;
}) {
  const { name } = h;
  return {
    name,
    help: h.help,
    type: "histogram",
    aggregator: "sum",
    reset: h.reset,
    async get() {
      const values: Sample[] = [];
      for (const { labels, buckets, sum, count } of h.series()) {
        if (count === 0) continue;
        let acc = 0;
        for (let b = 0; b < h.bounds.length; b++) {
          acc += buckets[b]!;
          values.push({ labels: { le: h.bounds[b]!, ...labels }, value: acc, metricName: `${name}_bucket` });
        }
        values.push({ labels: { le: "+Inf", ...labels }, value: count, metricName: `${name}_bucket` });
        values.push({ labels, value: sum, metricName: `${name}_sum` });
        values.push({ labels, value: count, metricName: `${name}_count` });
      }
      return { name, help: h.help, type: "histogram", values, aggregator: "sum" };
    },
  };
}
