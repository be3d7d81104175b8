/**
 * In-flight request counts per tenant, keyed by the tenant's uid (a tenant re-created under a deleted
 * one's id does not inherit its slots). A tenant with nothing in flight holds no entry, so memory is
 * one Map entry per tenant that currently has requests in flight.
 */
export class ConcurrencyGate {
  private readonly inFlight = new Map<string, number>();

  /** Takes a slot when fewer than `max` are held; false (and nothing taken) otherwise. */
  tryAcquire(tenant: string, max: number): boolean {
    const n = this.inFlight.get(tenant) ?? 0;
    if (n >= max) return false;
    this.inFlight.set(tenant, n + 1);
    return true;
  }

  /** Returns one slot. Callers guarantee once per successful `tryAcquire` (see `releaseOnce`). */
  release(tenant: string): void {
    const n = this.inFlight.get(tenant) ?? 0;
    if (n <= 1) this.inFlight.delete(tenant);
    else this.inFlight.set(tenant, n - 1);
  }

  /** A function that releases one slot of `tenant` the first time it is called and never again. */
  releaseOnce(tenant: string): () => void {
    let held = true;
    return () => {
      if (held) {
        held = false;
        this.release(tenant);
      }
    };
  }

  count(tenant: string): number {
    return this.inFlight.get(tenant) ?? 0;
  }

  /** Tenants with requests in flight. */
  get size(): number {
    return this.inFlight.size;
  }
}
