/**
 * The control API on the admin listener: one Elysia plugin per resource, composed here behind one
 * guard (guard.ts) and one error boundary (errors.ts). The guard runs in onRequest, before routing,
 * so every route but GET /healthz, and every unknown path, gets the same Host, cross-site, token and
 * body checks.
 */
import { Elysia } from "elysia";
import type { OpenDb } from "../db/open.ts";
import { describeStoreStatus, healthyStatus, type StoreStatus } from "../db/store-health.ts";
import type { ExplainPolicies } from "../explain/explain.ts";
import type { GatewayState } from "../gateway/state.ts";
import type { Clock } from "../lib/clock.ts";
import { jsonLog, type Log } from "../lib/log.ts";
import { createMetrics, type Metrics } from "../metrics/index.ts";
import { metricsRegistry } from "../metrics/registry.ts";
import type { QuotaCounters } from "../policies/limits/quota-counters.ts";
import type { VirtualTime } from "../testmode/virtual-time.ts";
import { dashboardPlugin } from "../ui/dashboard/plugin.ts";
import { operatorSessions } from "../ui/dashboard/sessions.ts";
import { portalLinksPlugin } from "../ui/portal/links-plugin.ts";
import { PortalLinks } from "../ui/sessions/links.ts";
import { SessionStore } from "../ui/sessions/store.ts";
import type { UsageReads } from "../usage/service.ts";
import { auditPlugin } from "./audit/plugin.ts";
import { AuditService } from "./audit/service.ts";
import { weakTokenReason } from "./auth.ts";
import { clockPlugin } from "./clock/plugin.ts";
import { configPlugin } from "./config/plugin.ts";
import { ConfigService } from "./config/service.ts";
import { credentialsPlugin } from "./credentials/plugin.ts";
import { CredentialService } from "./credentials/service.ts";
import { docsPlugin } from "./docs/plugin.ts";
import { mapError, refuseControlChars, refuseDeepNesting } from "./errors.ts";
import { explainPlugin } from "./explain/plugin.ts";
import { ExplainService } from "./explain/service.ts";
import { createGuard } from "./guard.ts";
import { keysPlugin } from "./keys/plugin.ts";
import { KeyService } from "./keys/service.ts";
import { operationsPlugin } from "./operations/plugin.ts";
import { plansPlugin } from "./plans/plugin.ts";
import { PlanService } from "./plans/service.ts";
import { policyPlugin } from "./policy/plugin.ts";
import { PolicyService } from "./policy/service.ts";
import { problemResponse, storeUnavailable } from "./problem.ts";
import { quotaPlugin } from "./quota/plugin.ts";
import { QuotaService, type SharedQuotaCounts } from "./quota/service.ts";
import { requestIdOf, tagRequestId } from "./request-id.ts";
import type { AdminStore, SharedCommit } from "./store.ts";
import { tenantsPlugin } from "./tenants/plugin.ts";
import { TenantService } from "./tenants/service.ts";
import type { ThrottleOptions } from "./throttle.ts";
import { usagePlugin } from "./usage/plugin.ts";

export interface AdminDeps {
  /** Null means no token is configured, which start-up only allows on loopback. */
  token: string | null;
  /** server.adminHosts: names the listener answers to besides its loopback names. */
  hosts?: readonly string[];
  state: GatewayState;
  database: OpenDb;
  clock: Clock;
  /** What GET /metrics renders: the Metrics whose observe the data plane calls. */
  metrics?: Metrics;
  /**
   * Whether the writes traffic causes reach the database (the writer thread's report). While they do
   * not, GET /readyz answers 503 naming the fault, /metrics shows it and control-API writes get 503.
   */
  store?: StoreState;
  /** True once shutdown has begun; GET /readyz then answers 503. */
  draining?: () => boolean;
  /** Answers GET /usage and GET /usage/export; without it those routes are not mounted. */
  usage?: UsageReads;
  throttle?: ThrottleOptions;
  /** Where bugs (500s) are logged; defaults to JSON lines on stderr. */
  log?: Log;
  /** Test mode's clock: mounts GET and POST /clock. */
  testClock?: VirtualTime;
  /** The data plane's policies, which POST /explain judges requests with; without them it is not mounted. */
  explain?: ExplainPolicies;
  /** The data plane's quota counters, which the quota routes read and change; without them they are not mounted. */
  quotas?: QuotaCounters;
  /** When the data plane's counters started (the dashboard's "since"); defaults to when this app is built. */
  startedAt?: number;
  /** The tenant portal's address as browsers reach it; null or absent while no portal listens. */
  portalUrl?: () => string | null;
  /** Cluster mode: changes to tenants, keys and credentials go through PostgreSQL. */
  shared?: SharedCommit;
  /** Cluster mode: the quota counts all nodes share in Redis, which the quota routes read and change. */
  sharedQuotas?: SharedQuotaCounts;
  /** Cluster mode: what /readyz says when something is off (PostgreSQL or Redis away, configs differ), else null. */
  cluster?: () => string | null;
}

export interface StoreState {
  status(): StoreStatus;
  /** False while writes on this thread would fail, stall the event loop or be lost. */
  writable(): boolean;
}

const alwaysWritable: StoreState = { status: () => healthyStatus, writable: () => true };

export function createAdminApp(deps: AdminDeps) {
  // start-up refuses these already; refusing here too means no code path can serve a sample token.
  const weak = deps.token === null ? null : weakTokenReason(deps.token);
  if (weak) throw new Error(`refusing to serve the control API: ${weak}`);

  const audit = new AuditService(deps.database, deps.clock);
  const store: AdminStore = {
    database: deps.database,
    state: deps.state,
    clock: deps.clock,
    audit,
    ...(deps.shared ? { shared: deps.shared } : {}),
  };
  const storeState = deps.store ?? alwaysWritable;
  const metrics = deps.metrics ?? createMetrics();
  const registry = metricsRegistry(metrics, storeState.status);
  const log = deps.log ?? jsonLog;
  // Browser sessions (src/ui): the dashboard's cookie is a second way past the guard.
  const sessionStore = new SessionStore(deps.database, deps.clock);
  const sessions = operatorSessions(sessionStore, deps.token);
  const portalUrl = deps.portalUrl ?? (() => null);
  const quotaService = deps.quotas ? new QuotaService(store, deps.quotas, deps.sharedQuotas) : undefined;

  return new Elysia({ normalize: false })
    .onRequest(tagRequestId)
    .onRequest(
      createGuard({
        token: deps.token,
        hosts: deps.hosts,
        clock: deps.clock,
        throttle: deps.throttle,
        sessions,
      }),
    )
    .onError(({ code, error, request }) => mapError(code, error, request, log))
    .onTransform(({ body, query }) => refuseDeepNesting(body, query))
    .onBeforeHandle(({ body, query, request }) => refuseControlChars(body, query, request))
    .onBeforeHandle(({ request }) => refuseWritesWhileStoreFails(request, storeState))
    .use(
      docsPlugin({
        usage: deps.usage !== undefined,
        clock: deps.testClock !== undefined,
        explain: deps.explain !== undefined,
        quota: deps.quotas !== undefined,
      }),
    )
    .use(
      operationsPlugin({
        database: deps.database,
        registry,
        draining: deps.draining ?? (() => false),
        store: storeState.status,
        ...(deps.cluster ? { cluster: deps.cluster } : {}),
      }),
    )
    .use(tenantsPlugin(new TenantService(store)))
    .use(keysPlugin(new KeyService(store)))
    .use(credentialsPlugin(new CredentialService(store)))
    .use(plansPlugin(new PlanService(store)))
    .use(policyPlugin(new PolicyService(store)))
    .use(quotaService ? quotaPlugin(quotaService) : new Elysia({ name: "quota-unavailable" }))
    .use(configPlugin(new ConfigService(store), deps.database, deps.clock))
    .use(auditPlugin(audit))
    .use(deps.usage ? usagePlugin({ usage: deps.usage, log }) : new Elysia({ name: "usage-unavailable" }))
    .use(deps.testClock ? clockPlugin(deps.testClock) : new Elysia({ name: "clock-unavailable" }))
    .use(
      deps.explain
        ? explainPlugin(new ExplainService(store, deps.explain))
        : new Elysia({ name: "explain-unavailable" }),
    )
    .use(
      portalLinksPlugin({
        store,
        links: new PortalLinks(deps.database, deps.clock),
        sessions: sessionStore,
        portalUrl,
      }),
    )
    .use(
      dashboardPlugin({
        token: deps.token,
        store: sessionStore,
        sessions,
        state: deps.state,
        clock: deps.clock,
        metrics,
        startedAt: deps.startedAt ?? deps.clock.now(),
        ...(deps.usage ? { usage: deps.usage } : {}),
        ...(deps.quotas ? { quotas: deps.quotas } : {}),
        ...(deps.sharedQuotas ? { sharedQuotas: deps.sharedQuotas } : {}),
        portal: portalUrl() !== null,
      }),
    );
}

/** POSTs that only read: they must keep answering while the store refuses writes. */
const READ_ONLY_POSTS = new Set(["/explain"]);

/** Every other control-API route that is not a GET changes state. */
function refuseWritesWhileStoreFails(request: Request, store: StoreState): Response | undefined {
  if (request.method === "GET" || request.method === "HEAD" || store.writable()) return undefined;
  if (request.method === "POST" && READ_ONLY_POSTS.has(new URL(request.url).pathname)) return undefined;
  return problemResponse(storeUnavailable(describeStoreStatus(store.status())), requestIdOf(request));
}

export { MAX_ADMIN_BODY } from "./guard.ts";

export type AdminApp = ReturnType<typeof createAdminApp>;
