/**
 * In-flight request counts per tenant. A tenant with nothing in flight holds no entry, so memory is
 * one Map entry per tenant that currently has requests in flight.
 */
export class ConcurrencyGate {
  private readonly inFlight = new Map<string, number>();

  /** Takes a slot when fewer than `max` are held; false (and nothing taken) otherwise. */
  tryAcquire(tenantId: string, max: number): boolean {
    const n = this.inFlight.get(tenantId) ?? 0;
    if (n >= max) return false;
    this.inFlight.set(tenantId, n + 1);
    return true;
  }

  /** Returns one slot. Callers guarantee once per successful `tryAcquire` (see `releaseOnce`). */
  release(tenantId: string): void {
    const n = this.inFlight.get(tenantId) ?? 0;
    if (n <= 1) this.inFlight.delete(tenantId);
    else this.inFlight.set(tenantId, n - 1);
  }

  /** A function that releases one slot of `tenantId` the first time it is called and never again. */
  releaseOnce(tenantId: string): () => void {
    let held = true;
    return () => {
      if (held) {
        held = false;
        this.release(tenantId);
      }
    };
  }

  count(tenantId: string): number {
    return this.inFlight.get(tenantId) ?? 0;
  }

  /** Tenants with requests in flight. */
  get size(): number {
    return this.inFlight.size;
  }
}
