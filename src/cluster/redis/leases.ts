/**
 * Concurrency slots held in Redis by this node's requests in flight. A slot is a lease that expires
 * `leaseMs` after it was taken or last renewed, so the slots of a node that dies come free on their
 * own; while a request runs its lease is renewed every third of that. A finished request releases its
 * slot at once; a release Redis does not take (it is unreachable) is retried when it answers again,
 * and until then the lease runs out by itself.
 */
import type { Clock } from "../../lib/clock.ts";
import type { Cancel, Scheduler } from "../../lib/scheduler.ts";
import { type RedisConnection, StoreUnavailable } from "./client.ts";
import { renewScript } from "./scripts.ts";

export class Leases {
  /** Lease id → its tenant's lease set. */
  private readonly held = new Map<string, string>();
  /** Released while Redis was unreachable: [lease set, lease id]. */
  private orphans: [string, string][] = [];
  private seq = 0;
  private readonly stopRenewal: Cancel;
  /** Releases and renewals sent and not yet answered. */
  private readonly sent = new Set<Promise<unknown>>();

  constructor(
    private readonly connection: RedisConnection,
    private readonly clock: Clock,
    private readonly nodeId: string,
    readonly leaseMs: number,
    private readonly keepMs: number,
    /** Whether Redis is believed reachable. */
    private readonly healthy: () => boolean,
    /** Runs the renewals, on gatehouse's clock (test mode moves it). */
    scheduler: Scheduler,
    private readonly onFailure: (err: StoreUnavailable) => void,
  ) {
    this.stopRenewal = scheduler.every(Math.floor(leaseMs / 3), () => this.track(this.renew()));
  }

  /** A new lease id, unique across nodes. */
  nextId(): string {
    return `${this.nodeId}:${++this.seq}`;
  }

  /** Records a lease the decide script took; the returned function releases it, once. */
  hold(set: string, id: string): () => void {
    this.held.set(id, set);
    return () => {
      if (this.held.delete(id)) this.release(set, id);
    };
  }

  get size(): number {
    return this.held.size;
  }

  /** Retries the releases Redis did not take; called when it answers again. */
  async releaseOrphans(): Promise<void> {
    const orphans = this.orphans;
    this.orphans = [];
    for (const [set, id] of orphans) await this.connection.send("ZREM", [set, id]);
  }

  /** Resolves once every release and renewal sent so far has been answered (or kept for later). */
  async released(): Promise<void> {
    while (this.sent.size > 0) await Promise.all(this.sent);
  }

  private track(p: Promise<unknown>): Promise<unknown> {
    this.sent.add(p);
    const done = () => this.sent.delete(p);
    p.then(done, done);
    return p;
  }

  stop(): void {
    this.stopRenewal();
  }

  private release(set: string, id: string): void {
    if (!this.healthy()) {
      this.orphans.push([set, id]);
      return;
    }
    this.track(
      this.connection.send("ZREM", [set, id]).catch((err: unknown) => {
        this.orphans.push([set, id]);
        if (err instanceof StoreUnavailable) this.onFailure(err);
      }),
    );
  }

  /** Extends every lease still held, one call per tenant (a tenant's keys share a slot). */
  private async renew(): Promise<void> {
    if (this.held.size === 0 || !this.healthy()) return;
    const bySet = new Map<string, string[]>();
    for (const [id, set] of this.held) {
      const ids = bySet.get(set);
      if (ids) ids.push(id);
      else bySet.set(set, [id]);
    }
    const now = this.clock.now();
    try {
      for (const [set, ids] of bySet) {
        await this.connection.run(
          renewScript,
          ids.map(() => set),
          [now, this.leaseMs, this.keepMs, ...ids],
        );
      }
    } catch (err) {
      this.onFailure(err instanceof StoreUnavailable ? err : new StoreUnavailable("error", String(err)));
    }
  }
}
