/**
 * The data plane put together: the policy chain around one source of snapshots, the proxy, the
 * observers, and the listener. app.ts runs one on the main thread (server.threads: 1); with more
 * threads, each data-plane thread runs one (threads/worker.ts), so both serve requests alike.
 */
import type { Server } from "bun";
import type { ExplainableLimits } from "../explain/explain.ts";
import { createTenantScopePolicy } from "../identity/tenant-scope.ts";
import type { TokenVerifier } from "../identity/tokens.ts";
import type { Clock } from "../lib/clock.ts";
import type { DeadlineSource } from "../lib/deadlines.ts";
import type { Log } from "../lib/log.ts";
import type { Scheduler } from "../lib/scheduler.ts";
import type { Metrics } from "../metrics/index.ts";
import { createAuthPolicy, type KeyCache } from "../policies/auth/index.ts";
import { createBodySizePolicy } from "../policies/body-size/index.ts";
import type { Policy, RequestContext, RequestOutcome, WaitingPolicy } from "../policies/policy.ts";
import { createRoutePolicy } from "../policies/route/index.ts";
import { createRulesPolicy } from "../policies/rules/index.ts";
import { createGateway, type Handler } from "./pipeline.ts";
import { problemResponse } from "./problem.ts";
import type { ProxyDeps } from "./proxy.ts";
import { Refusal } from "./refusal.ts";
import type { Snapshot } from "./snapshot.ts";
import type { UpstreamClient } from "./upstream-call.ts";
import type { UpstreamFailureLog } from "./upstream-failure-log.ts";

export interface DataPlaneDeps {
  readonly clock: Clock;
  /** Runs the upstream deadlines. */
  readonly scheduler: Scheduler;
  /** The snapshot a request starts with (and keeps to its end). */
  readonly snapshot: () => Snapshot;
  /** Carries requests to real upstreams (upstream-clients.ts). */
  readonly client: UpstreamClient;
  /** The upstream deadlines: on real time, or test mode's virtual clock. */
  readonly deadlines: DeadlineSource;
  /** Monotonic time for latencies. */
  readonly now: () => number;
  readonly maxBodyBytes: number;
  readonly tokens: TokenVerifier;
  readonly keyCache: KeyCache;
  /** Hears each use of a key (its last-used time). */
  readonly onKeyUse: (keyId: string, at: number) => void;
  readonly limits: WaitingPolicy & ExplainableLimits;
  /** Counts every request when it has ended, and every upstream failure by cause. */
  readonly metrics: Pick<Metrics, "observe" | "upstreamFailed">;
  /** Hears every request once, when it has ended, after the metrics: its usage row. */
  readonly recordUsage: (ctx: RequestContext, outcome: RequestOutcome) => void;
  /** Logs upstream failures (a line at once, then a count per upstream and cause). */
  readonly upstreamFailures: Pick<UpstreamFailureLog, "report">;
  readonly log: Log;
  /** Test mode and the scenario runner: what the proxy adds for them. */
  readonly proxy?: Pick<ProxyDeps, "waits" | "onForward">;
}

/** The policies by name, as explain judges requests with these very objects. */
export interface DataPlanePolicies {
  readonly tokens: TokenVerifier;
  readonly route: Policy;
  readonly tenantScope: Policy;
  readonly rules: Policy;
  readonly bodySize: Policy;
  readonly limits: WaitingPolicy & ExplainableLimits;
}

export function createDataPlane(deps: DataPlaneDeps): { handle: Handler; policies: DataPlanePolicies } {
  const { clock, log } = deps;
  const policies: DataPlanePolicies = {
    tokens: deps.tokens,
    route: createRoutePolicy(),
    tenantScope: createTenantScopePolicy(),
    rules: createRulesPolicy(),
    bodySize: createBodySizePolicy(deps.maxBodyBytes),
    limits: deps.limits,
  };
  const handle = createGateway({
    clock,
    snapshot: deps.snapshot,
    policies: [
      createAuthPolicy({ clock, onUse: deps.onKeyUse, cache: deps.keyCache, tokens: deps.tokens }),
      policies.route,
      policies.tenantScope,
      policies.rules,
      policies.bodySize,
      policies.limits,
    ],
    proxy: {
      client: deps.client,
      maxBodyBytes: deps.maxBodyBytes,
      now: deps.now,
      deadlines: deps.deadlines,
      scheduler: deps.scheduler,
      ...deps.proxy,
      onFailure: (failure) => {
        deps.metrics.upstreamFailed(failure.upstream, failure.cause);
        deps.upstreamFailures.report(failure);
      },
      log: (msg, fields) => log("error", msg, fields),
    },
    observe: (ctx, outcome) => {
      deps.metrics.observe(ctx, outcome);
      deps.recordUsage(ctx, outcome);
    },
    log: (msg, fields) => log("error", msg, fields),
  });
  return { handle, policies };
}

/** The data listener's Bun.serve; `reusePort` lets several threads share one port. */
export function serveDataPlane(o: {
  hostname: string;
  port: number;
  reusePort: boolean;
  idleSeconds: number;
  maxBodyBytes: number;
  handle: Handler;
  log: Log;
}): Server<undefined> {
  return Bun.serve({
    hostname: o.hostname,
    port: o.port,
    reusePort: o.reusePort,
    // Never Bun's developer error pages, whatever NODE_ENV says.
    development: false,
    idleTimeout: o.idleSeconds,
    // Bun's own cap sits above ours so that oversized bodies get our problem+json 413.
    maxRequestBodySize: o.maxBodyBytes + 1024 * 1024,
    fetch: (req, srv) => o.handle(req, srv.requestIP(req)?.address ?? null),
    error: (err) => {
      o.log("error", "data plane error", { error: err.stack ?? String(err) });
      return problemResponse(
        new Refusal("internal_error", "The gateway failed to handle this request."),
        "-",
      );
    },
  });
}
