/**
 * The limits policy of a data-plane thread: policies/limits/policy.ts itself, run on the counters
 * all threads share (counters.ts) inside the locks of the request's tenant and key. Inside them the
 * policy's one synchronous step (judge every window and quota, take a concurrency unit, then count
 * everywhere) is atomic across threads, so every guarantee of one thread holds across all of them:
 * at most `limit` units in any window W, refusals cost nothing, Retry-After never early, RateLimit
 * fields exact, quotas never over-admitted.
 *
 * Why locks, not lock-free counters: a request must judge several counters and count in all of them
 * or none (as the Redis script does in one atomic call); compare-and-swap per counter cannot undo the
 * ones already counted when a later one refuses. The locks are held for the policy's arithmetic only
 * (about a microsecond), per tenant and key stripe, so threads wait for each other only on one hot
 * tenant. The first request of a counter a thread has not met asks the main thread for its slot and
 * waits for the answer (the pipeline awaits a policy that returns a promise, as for tokens).
 */

import type { Refusal } from "../gateway/refusal.ts";
import type { KeyView, TenantView } from "../gateway/snapshot.ts";
import type { Clock } from "../lib/clock.ts";
import { createLimitsPolicy, type LimitsExplanation } from "../policies/limits/policy.ts";
import type { RequestContext, WaitingPolicy } from "../policies/policy.ts";
import type { LateWork, SharedCounters } from "./counters.ts";
import { stripeOf } from "./memory.ts";
import type { SlotCache } from "./slot-cache.ts";

export interface ThreadLimitsPolicy extends WaitingPolicy {
  explain(tenant: TenantView, key: KeyView, cost: number): LimitsExplanation | Promise<LimitsExplanation>;
  /** Resolves once the work requests left for their end (waiting for a slot) is done. */
  settled(): Promise<void>;
}

export function createThreadLimitsPolicy(deps: {
  clock: Clock;
  cache: SlotCache;
  counters: SharedCounters;
  late: LateWork;
}): ThreadLimitsPolicy {
  const { cache, late } = deps;
  const views = cache.views;
  const inner = createLimitsPolicy({ clock: deps.clock, ...deps.counters });

  /** Runs `step` under the locks of the tenant and the key, once every counter they need is current. */
  function locked<T>(tenant: TenantView, key: KeyView, step: () => T): T | Promise<T> {
    // Two stripes are always taken in the same order, so two threads never wait for each other.
    const a = stripeOf(tenant.uid);
    const b = stripeOf(key.uid);
    const first = a < b ? a : b;
    const second = a < b ? b : a;
    views.lock(first);
    if (second !== first) views.lock(second);
    let wants: ReturnType<SlotCache["missing"]>;
    try {
      wants = cache.missing(tenant, key);
      if (wants === null) return step();
    } finally {
      if (second !== first) views.unlock(second);
      views.unlock(first);
    }
    const fetched = cache.fetch(wants);
    return fetched instanceof Promise
      ? fetched.then(() => locked(tenant, key, step))
      : locked(tenant, key, step);
  }

  return {
    name: "limits",
    check(ctx: RequestContext): Refusal | undefined | Promise<Refusal | undefined> {
      const tenant = ctx.tenant!;
      const key = ctx.key!;
      if (
        tenant.limits.length + key.limits.length + tenant.quotas.length + key.quotas.length === 0 &&
        tenant.concurrency === null
      ) {
        return undefined;
      }
      return locked(tenant, key, () => inner.check(ctx));
    },
    explain(tenant: TenantView, key: KeyView, cost: number) {
      return locked(tenant, key, () => inner.explain(tenant, key, cost));
    },
    settled: () => late.settled(),
  };
}
