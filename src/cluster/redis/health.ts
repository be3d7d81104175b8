/**
 * Whether the shared counters can be reached, and what the node did meanwhile: the one place the
 * policy, the probe, /readyz, /metrics and the log read it from. The log says when Redis is lost
 * (at once), once a minute while it stays lost, and when it is back.
 */
import type { Clock } from "../../lib/clock.ts";
import type { Log } from "../../lib/log.ts";
import type { StoreFailure, StoreUnavailable } from "./client.ts";
import type { OnStoreError } from "./settings.ts";

/** Who decided a request's limits: the node alone (no cluster), Redis, or onStoreError's mode. */
export type DecidedBy = "memory" | "redis" | OnStoreError;

export interface ClusterReading {
  readonly healthy: boolean;
  /** Live nodes seen at the last heartbeat (or the configured count before any). */
  readonly nodes: number;
  readonly onStoreError: OnStoreError;
  /** Requests decided without Redis, by onStoreError's mode. */
  readonly fallbacks: Readonly<Record<OnStoreError, number>>;
  /** Calls to Redis that got no answer, by why. */
  readonly failures: Readonly<Record<StoreFailure, number>>;
}

/** Failed probes (one a second) between two "still unreachable" lines. */
const PROBES_PER_LOG = 60;

export class ClusterHealth implements ClusterReading {
  healthy = false;
  nodes: number;
  readonly fallbacks = { local: 0, open: 0, closed: 0 };
  readonly failures = { timeout: 0, disconnected: 0, error: 0 };
  private lostAt: number | null = null;
  private lastError = "not connected yet";
  private failedProbes = 0;
  private fallbacksAtLoss = 0;

  constructor(
    readonly onStoreError: OnStoreError,
    assumedNodes: number,
    private readonly clock: Clock,
    private readonly log: Log,
  ) {
    this.nodes = assumedNodes;
  }

  /** A call got no answer: from now on requests are decided without Redis until a probe succeeds. */
  failed(err: StoreUnavailable): void {
    this.failures[err.failure]++;
    this.lastError = err.message;
    if (this.lostAt !== null) return;
    this.healthy = false;
    this.lostAt = this.clock.now();
    this.failedProbes = 0;
    this.fallbacksAtLoss = this.fallbackCount();
    this.log("warn", "shared counters unreachable; limits are decided without Redis", {
      onStoreError: this.onStoreError,
      nodes: this.nodes,
      error: err.message,
    });
  }

  /** The probe failed again; logs once a minute. */
  probeFailed(err: StoreUnavailable): void {
    if (this.lostAt === null) {
      this.failed(err);
      return;
    }
    this.failures[err.failure]++;
    this.lastError = err.message;
    if (++this.failedProbes % PROBES_PER_LOG === 0) {
      this.log("warn", "shared counters still unreachable", {
        onStoreError: this.onStoreError,
        since: new Date(this.lostAt).toISOString(),
        decidedWithoutRedis: this.fallbackCount() - this.fallbacksAtLoss,
        error: this.lastError,
      });
    }
  }

  /** Redis answers again, and what was counted without it has been added there. */
  recovered(merged: { windows: number; quotas: number }): void {
    const was = this.lostAt;
    this.healthy = true;
    this.lostAt = null;
    if (was === null) return;
    this.log("info", "shared counters reachable again", {
      since: new Date(was).toISOString(),
      decidedWithoutRedis: this.fallbackCount() - this.fallbacksAtLoss,
      mergedWindows: merged.windows,
      mergedQuotas: merged.quotas,
    });
  }

  /** Why /readyz says degraded, or null while Redis answers. */
  describe(): string | null {
    if (this.healthy) return null;
    const since = this.lostAt === null ? "" : ` since ${new Date(this.lostAt).toISOString()}`;
    const how =
      this.onStoreError === "local"
        ? `each node enforces its share of every limit (this one 1/${this.nodes})`
        : this.onStoreError === "open"
          ? "requests are admitted without counting"
          : "requests with limits are refused with 503";
    return `The shared counters (Redis) cannot be reached${since}: ${how}. Last error: ${this.lastError}`;
  }

  private fallbackCount(): number {
    return this.fallbacks.local + this.fallbacks.open + this.fallbacks.closed;
  }
}
