import type { Refusal } from "../../src/gateway/refusal.ts";
import type {
  CompiledLimit,
  CompiledQuota,
  CompiledRoute,
  KeyView,
  Snapshot,
  TenantView,
} from "../../src/gateway/snapshot.ts";
import { compileIdentity } from "../../src/identity/compile.ts";
import { ManualClock } from "../../src/lib/clock.ts";
import { prng } from "../../src/lib/prng.ts";
import {
  ConcurrencyGate,
  createLimitsPolicy,
  MemoryQuotaStore,
  QuotaCounters,
  SlidingWindows,
} from "../../src/policies/limits/index.ts";
import type { RequestContext, RequestOutcome } from "../../src/policies/policy.ts";

export { prng };

export const T0 = Date.UTC(2026, 0, 1);

/** A plan's limit unless `extra.counter` says otherwise; its counter follows its name. */
export function limit(n: number, windowMs: number, extra: Partial<CompiledLimit> = {}): CompiledLimit {
  const name = extra.name ?? `${n}-per-${windowMs}ms`;
  return {
    name,
    declaredAt: `plans.test.limits[${name}]`,
    counter: `plan:${name}`,
    limit: n,
    windowMs,
    by: "tenant",
    shadow: false,
    ...extra,
  };
}

export function quota(
  n: number,
  period: CompiledQuota["period"],
  extra: Partial<CompiledQuota> = {},
): CompiledQuota {
  const name = extra.name ?? `quota-${period}`;
  return {
    name,
    declaredAt: "plans.test.quota",
    counter: `plan:${name}`,
    limit: n,
    period,
    anchor: 1,
    timezone: "UTC",
    by: "tenant",
    shadow: false,
    ...extra,
  };
}

/** Its uid follows its id unless given, so tenants with different ids count apart. */
export function tenant(extra: Partial<TenantView> = {}): TenantView {
  return {
    id: "acme",
    uid: `uid-${extra.id ?? "acme"}`,
    name: "Acme",
    plan: "free",
    disabled: false,
    rules: [],
    limits: [],
    quotas: [],
    concurrency: null,
    billFailures: false,
    upstreams: new Map(),
    externalIds: [],
    metadata: {},
    own: { rules: [], limits: [], quotas: [], concurrency: null, billFailures: false },
    targets: new Map(),
    ...extra,
  };
}

export function key(extra: Partial<KeyView> = {}): KeyView {
  return {
    id: "acme-dev",
    uid: `uid-${extra.id ?? "acme-dev"}`,
    tenantId: "acme",
    expiresAt: null,
    disabled: false,
    graceUntil: null,
    rules: [],
    quotas: [],
    limits: [],
    ...extra,
  };
}

const snapshot: Snapshot = {
  version: 1,
  routes: [],
  upstreams: new Map(),
  tenants: new Map(),
  keysByHash: new Map(),
  plans: new Map(),
  identity: compileIdentity({}),
  tenantsByName: new Map(),
};

export interface TestCtx extends RequestContext {
  /** Runs the onDone callbacks, as the server does when the response ends (by default: ok, at its cost). */
  finish(over?: Partial<RequestOutcome>): void;
  readonly doneCallbacks: number;
}

export function ctx(t: TenantView, k: KeyView, cost = 1, startedAt = 0): TestCtx {
  const done: ((o: RequestOutcome) => void)[] = [];
  return {
    requestId: "req-1",
    method: "GET",
    path: "/v1/x",
    query: "",
    segments: ["v1", "x"],
    lenientSegments: ["v1", "x"],
    startedAt,
    headers: new Headers(),
    snapshot,
    tenant: t,
    key: k,
    cost,
    wouldRefuse: null,
    responseHeaders: new Map(),
    onDone: (fn) => done.push(fn),
    finish(over = {}) {
      const outcome = {
        status: 200,
        outcome: "ok",
        bytesIn: 0,
        bytesOut: 0,
        endedAt: startedAt,
        upstreamMs: null,
        cost,
        billed: cost,
        ...over,
      };
      for (const fn of done) fn(outcome);
    },
    get doneCallbacks() {
      return done.length;
    },
  };
}

/** A policy with fresh in-memory state on a ManualClock. */
export function setup(now = T0) {
  const clock = new ManualClock(now);
  const windows = new SlidingWindows();
  const store = new MemoryQuotaStore();
  const quotas = new QuotaCounters(store, clock);
  const concurrency = new ConcurrencyGate();
  const policy = createLimitsPolicy({ clock, windows, quotas, concurrency });
  return { clock, windows, store, quotas, concurrency, policy };
}

/** The exact reference: every admitted (time, cost), and sums over any interval. */
export class SlidingLog {
  private readonly times: number[] = [];
  private readonly costs: number[] = [];

  add(t: number, cost: number): void {
    this.times.push(t);
    this.costs.push(cost);
  }

  /** Units admitted at times in (from, to]. */
  sum(from: number, to: number): number {
    let s = 0;
    for (let i = this.times.length - 1; i >= 0; i--) {
      const t = this.times[i]!;
      if (t <= from) break; // times are added in non-decreasing order
      if (t <= to) s += this.costs[i]!;
    }
    return s;
  }

  /** The most units admitted in any interval (s − w, s]; the maximum is reached with s at an admission. */
  maxInAnyWindow(w: number): number {
    let max = 0;
    let sum = 0;
    let lo = 0;
    for (let i = 0; i < this.times.length; i++) {
      sum += this.costs[i]!;
      while (this.times[lo]! <= this.times[i]! - w) sum -= this.costs[lo++]!;
      if (sum > max) max = sum;
    }
    return max;
  }
}

/** A route that measures its cost from the response. */
export const measuring = {
  costFrom: { kind: "header", name: "x-units", fallback: 1 },
} as unknown as CompiledRoute;

/** What a client sees of a decision. */
export function seen(r: Refusal | undefined, c: TestCtx) {
  return {
    code: r?.code ?? null,
    detail: r?.detail ?? null,
    headers: r?.headers ?? null,
    response: Object.fromEntries(c.responseHeaders),
    wouldRefuse: c.wouldRefuse,
  };
}

export function pick<T>(rnd: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rnd() * xs.length)]!;
}

/** A tenant with random windows, quotas (some shadows, some per key) and maybe a cap, and two keys. */
export function randomViews(rnd: () => number): { t: TenantView; keys: KeyView[] } {
  const limits = Array.from({ length: 1 + Math.floor(rnd() * 3) }, (_, i) =>
    limit(pick(rnd, [1, 3, 5, 10, 40]), pick(rnd, [20, 100, 999, 1000, 1500, 60_000]), {
      name: `l${i}`,
      by: rnd() < 0.3 ? "key" : "tenant",
      shadow: rnd() < 0.2,
    }),
  );
  const quotas =
    rnd() < 0.6
      ? [
          quota(pick(rnd, [5, 30, 200]), pick(rnd, ["hour", "day"] as const), {
            name: "q",
            by: rnd() < 0.3 ? "key" : "tenant",
            shadow: rnd() < 0.2,
          }),
        ]
      : [];
  const own =
    rnd() < 0.3
      ? [limit(pick(rnd, [2, 8]), pick(rnd, [500, 5000]), { name: "own", counter: "key:own" })]
      : [];
  const ownQuota =
    rnd() < 0.2 ? [quota(pick(rnd, [4, 50]), "hour", { name: "kq", counter: "key:kq", by: "key" })] : [];
  const t = tenant({ id: "acme", limits, quotas, concurrency: rnd() < 0.3 ? pick(rnd, [1, 2, 3]) : null });
  return { t, keys: [key({ id: "k1", limits: own, quotas: ownQuota }), key({ id: "k2" })] };
}
