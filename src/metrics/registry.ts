/**
 * The Prometheus registry GET /metrics renders, built over a Metrics' counts on a registry of our
 * own (never prom-client's global one, so two gateways in one process, as in tests, do not mix).
 */
import { Counter, Gauge, type Histogram, Registry } from "prom-client";
import { healthyStatus, STORE_FAULTS, type StoreStatus } from "../db/store-health.ts";
import { BUCKETS, CODES, type Metrics, OUTCOMES, STATUS_CLASSES, type TenantStats } from "./index.ts";

const registries = new WeakMap<Metrics, Registry>();

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
    help: "Requests the gateway refused, by tenant and refusal code.",
    labelNames: ["tenant", "code"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [tenant, s] of stats) {
        for (let i = 0; i < s.refusals.length; i++) {
          if (s.refusals[i] !== 0) this.inc({ tenant, code: CODES[i]! }, s.refusals[i]);
        }
      }
    },
  });
  storeMetrics(registry, store);
  // prom-client's Histogram cannot be given bucket counts, only single observations, so the
  // histogram is a collector of our own in the shape prom-client's registry renders.
  registry.registerMetric(latencyCollector(stats) as unknown as Histogram);
  return registry;
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
    help: "Usage rows waiting in memory for the database (at most usage.bufferRows).",
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
}

interface Sample {
  labels: Record<string, string | number>;
  value: number;
  metricName: string;
}

function latencyCollector(stats: ReadonlyMap<string, TenantStats>) {
  const name = "gatehouse_request_duration_seconds";
  return {
    name,
    help: "Time from arrival to the end of the response, by tenant and outcome class.",
    type: "histogram",
    aggregator: "sum",
    /** registry.resetMetrics(): the counters are rebuilt from the same arrays, so all restart at 0. */
    reset() {
      for (const s of stats.values()) {
        for (const a of [s.requests, s.refusals, s.buckets, s.sum, s.count]) a.fill(0);
      }
    },
    async get() {
      const values: Sample[] = [];
      for (const [tenant, s] of stats) {
        for (let cls = 0; cls < OUTCOMES.length; cls++) {
          const count = s.count[cls]!;
          if (count === 0) continue;
          const outcome = OUTCOMES[cls]!;
          let acc = 0;
          for (let b = 0; b < BUCKETS.length; b++) {
            acc += s.buckets[cls * BUCKETS.length + b]!;
            values.push({
              labels: { le: BUCKETS[b]!, tenant, outcome },
              value: acc,
              metricName: `${name}_bucket`,
            });
          }
          values.push({
            labels: { le: "+Inf", tenant, outcome },
            value: count,
            metricName: `${name}_bucket`,
          });
          values.push({ labels: { tenant, outcome }, value: s.sum[cls]!, metricName: `${name}_sum` });
          values.push({ labels: { tenant, outcome }, value: count, metricName: `${name}_count` });
        }
      }
      return { name, help: this.help, type: this.type, values, aggregator: this.aggregator };
    },
  };
}
