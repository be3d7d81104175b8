/**
 * gatehouse's HTTP/1.1 client for upstreams: keep-alive connections over Bun.connect (TLS through
 * Bun's, certificates and host names verified), one pool per upstream. It replaced Bun's fetch on
 * the proxy path: on a machine whose cores are all busy, what sets throughput is the CPU the whole
 * process spends per request, and this client spends less of it than fetch, whose own thread moves
 * every request and response between threads (README, Performance).
 */
import type { DeadlineSource } from "../../lib/deadlines.ts";
import type { Cancel, Scheduler } from "../../lib/scheduler.ts";
import type { UpstreamTarget } from "../upstream.ts";
import type { UpstreamCall, UpstreamClient, UpstreamRequest } from "../upstream-call.ts";
import { Exchange } from "./exchange.ts";
import { type Origin, Pool } from "./pool.ts";

export interface Http1ClientOptions {
  /** The upstream deadlines (first byte, idle): real time, or test mode's clock. */
  deadlines: DeadlineSource;
  /** Closes idle connections: always real time, since it decides nothing a request sees. */
  housekeeping: Scheduler;
  /** Real monotonic time in ms, for how long connections have been idle. */
  now: () => number;
  /** Certificates to trust for https upstreams instead of Bun's bundled ones (tests bring a CA). */
  ca?: string;
  /**
   * How many clients share each upstream's `maxConnections` (the data-plane threads, each with a
   * client of its own): each may open its share, rounded down, and at least one.
   */
  sharedBy?: number;
}

export class Http1Client implements UpstreamClient {
  private readonly pools = new Map<string, Pool>();
  private readonly byTarget = new WeakMap<UpstreamTarget, Pool>();
  private sweep: Cancel | null = null;

  constructor(private readonly o: Http1ClientOptions) {}

  send(r: UpstreamRequest): UpstreamCall {
    return new Exchange(r, this.poolFor(r.target), this.o.deadlines);
  }

  close(): void {
    this.sweep?.();
    this.sweep = null;
    for (const pool of this.pools.values()) pool.closeIdle(true);
  }

  private maxFor(target: UpstreamTarget): number {
    return Math.max(1, Math.floor(target.maxConnections / (this.o.sharedBy ?? 1)));
  }

  private poolFor(target: UpstreamTarget): Pool {
    let pool = this.byTarget.get(target);
    if (pool === undefined) {
      const origin = originOf(target.baseUrl!);
      // Per upstream name and address: a reload that changes neither keeps the warm connections.
      const key = `${target.name}\u0000${origin.tls}\u0000${origin.host}`;
      pool = this.pools.get(key);
      if (pool === undefined) {
        pool = new Pool(origin, this.maxFor(target), this.o.now, this.o.ca);
        this.pools.set(key, pool);
        this.sweep ??= this.o.housekeeping.every(1_000, () => this.closeStale());
      }
      pool.max = this.maxFor(target);
      this.byTarget.set(target, pool);
    }
    return pool;
  }

  private closeStale(): void {
    for (const pool of this.pools.values()) pool.closeIdle();
  }
}

/** Where an upstream's base URL points: host, port, TLS, and the path prefix of every request. */
export function originOf(baseUrl: string): Origin {
  const url = new URL(baseUrl);
  const tls = url.protocol === "https:";
  const hostname = url.hostname.startsWith("[") ? url.hostname.slice(1, -1) : url.hostname;
  return {
    hostname,
    port: url.port ? Number(url.port) : tls ? 443 : 80,
    tls,
    host: url.host,
    basePath: url.pathname === "/" ? "" : url.pathname.replace(/\/+$/, ""),
  };
}
