/**
 * Slows down admin token guessing: after `maxFailures` bad tokens from one client address within
 * `windowMs`, that address gets 429 (even with the right token, so guesses teach nothing) until the
 * oldest failure leaves the window. Time comes from the injected clock.
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
