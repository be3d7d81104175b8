/**
 * Counts wrong admin tokens per client address: after `maxFailures` within `windowMs`, the guard
 * answers that address's further wrong guesses with 429 until the oldest failure leaves the window.
 * It is consulted only once a token has failed, so the right token is never refused. Time comes from
 * the injected clock; memory is bounded by `maxClients`.
 */
import type { Clock } from "../lib/clock.ts";

export interface ThrottleOptions {
  maxFailures?: number;
  windowMs?: number;
  /** Bounds memory under a spray from many addresses. */
  maxClients?: number;
}

export class AuthFailureThrottle {
  private readonly failures = new Map<string, number[]>();
  private readonly maxFailures: number;
  private readonly windowMs: number;
  private readonly maxClients: number;

  constructor(
    private readonly clock: Clock,
    options: ThrottleOptions = {},
  ) {
    this.maxFailures = options.maxFailures ?? 10;
    this.windowMs = options.windowMs ?? 60_000;
    this.maxClients = options.maxClients ?? 10_000;
  }

  /** Milliseconds until `client` may try again, or 0 when it is not throttled. */
  retryAfterMs(client: string): number {
    const recent = this.recent(client);
    if (recent.length < this.maxFailures) return 0;
    return recent[recent.length - this.maxFailures]! + this.windowMs - this.clock.now();
  }

  recordFailure(client: string): void {
    const recent = this.recent(client);
    recent.push(this.clock.now());
    this.failures.delete(client);
    this.failures.set(client, recent);
    if (this.failures.size > this.maxClients) this.evict();
  }

  private recent(client: string): number[] {
    const since = this.clock.now() - this.windowMs;
    const list = (this.failures.get(client) ?? []).filter((t) => t > since);
    // Only the newest maxFailures matter for the decision.
    return list.slice(-this.maxFailures);
  }

  private evict(): void {
    const since = this.clock.now() - this.windowMs;
    for (const [client, list] of this.failures) {
      if (list[list.length - 1]! <= since) this.failures.delete(client);
    }
    // Still too many: drop the least recently failing (Map keeps insertion order).
    for (const client of this.failures.keys()) {
      if (this.failures.size <= this.maxClients) break;
      this.failures.delete(client);
    }
  }
}
