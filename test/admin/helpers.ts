/**
 * Builds the control API and a data plane over one GatewayState, from inline YAML written to a temp
 * file (so reloads have something to re-read), an in-memory database and a ManualClock.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createAdminApp } from "../../src/admin/app.ts";
import { setClientIp } from "../../src/admin/client-ip.ts";
import { LastUsedTracker, sqliteLastUsedWriter } from "../../src/admin/keys/last-used.ts";
import type { ThrottleOptions } from "../../src/admin/throttle.ts";
import { loadConfigFile } from "../../src/config/load.ts";
import { openDb } from "../../src/db/open.ts";
import { healthyStatus, type StoreStatus } from "../../src/db/store-health.ts";
import { createGateway } from "../../src/gateway/pipeline.ts";
import { GatewayState } from "../../src/gateway/state.ts";
import { RemoteKeySets } from "../../src/identity/jwks-cache.ts";
import { createTenantScopePolicy } from "../../src/identity/tenant-scope.ts";
import { TokenVerifier } from "../../src/identity/tokens.ts";
import { ManualClock } from "../../src/lib/clock.ts";
import { silentLog } from "../../src/lib/log.ts";
import { timerScheduler } from "../../src/lib/scheduler.ts";
import { createMetrics } from "../../src/metrics/index.ts";
import { createAuthPolicy } from "../../src/policies/auth/index.ts";
import { createBodySizePolicy } from "../../src/policies/body-size/index.ts";
import {
  ConcurrencyGate,
  createLimitsPolicy,
  MemoryQuotaStore,
  QuotaCounters,
  SlidingWindows,
} from "../../src/policies/limits/index.ts";
import { createRoutePolicy } from "../../src/policies/route/index.ts";
import { createRulesPolicy } from "../../src/policies/rules/index.ts";
import { createUsageService } from "../../src/usage/service.ts";
import { fetchProxy } from "../support/proxy.ts";

export const TOKEN = "k7Qm2xVb9LpR4tZw8NcY3hJd";

export const BASE_YAML = `version: 1
server:
  adminToken: ${TOKEN}
upstreams:
  sandbox: { mock: echo }
  sandbox-eu: { mock: echo }
plans:
  free:
    limits: [{ limit: 1000, window: 1s }]
    rules:
      - allow: "GET /v1/**"
  premium:
    rules:
      - allow: "* /v1/**"
routes:
  - match: "* /v1/**"
    upstream: sandbox
tenants:
  acme:
    name: Acme Corp
    plan: premium
    metadata: { region: eu }
    keys:
      - { id: acme-dev, secret: gh_demo_acme_0001 }
  globex:
    plan: free
    keys:
      - id: globex-dev
        hash: "sha256:${"a".repeat(64)}"
`;

export interface CallOptions {
  body?: unknown;
  /** A raw body string, sent as is. */
  raw?: string;
  /** Send a body without Content-Type (by default a body is declared application/json). */
  untyped?: boolean;
  token?: string | null;
  ip?: string;
  headers?: Record<string, string>;
}

export function adminFixture(
  yaml = BASE_YAML,
  options: { token?: string | null; hosts?: string[]; throttle?: ThrottleOptions } = {},
) {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-admin-"));
  const configPath = join(dir, "gateway.yaml");
  writeFileSync(configPath, yaml);
  const clock = new ManualClock();
  const database = openDb(":memory:");
  const state = new GatewayState(configPath, database, clock, {}, loadConfigFile(configPath, {}));
  const metrics = createMetrics();
  const tracker = new LastUsedTracker(sqliteLastUsedWriter(database.sqlite));
  let draining = false;
  let store = { status: healthyStatus, writable: true };
  const token = options.token === undefined ? TOKEN : options.token;
  const quotas = new QuotaCounters(new MemoryQuotaStore(), clock);
  const policies = {
    tokens: new TokenVerifier(new RemoteKeySets({ fetch, clock, scheduler: timerScheduler })),
    route: createRoutePolicy(),
    tenantScope: createTenantScopePolicy(),
    rules: createRulesPolicy(),
    bodySize: createBodySizePolicy(1024 * 1024),
    limits: createLimitsPolicy({
      clock,
      windows: new SlidingWindows(),
      quotas,
      concurrency: new ConcurrencyGate(),
    }),
  };
  const app = createAdminApp({
    token,
    hosts: options.hosts,
    throttle: options.throttle,
    state,
    database,
    clock,
    metrics,
    draining: () => draining,
    store: { status: () => store.status, writable: () => store.writable },
    usage: createUsageService({ sqlite: database.sqlite, clock }),
    log: silentLog,
    explain: policies,
    quotas,
  });
  const gateway = createGateway({
    clock,
    snapshot: () => state.snapshot,
    policies: [createAuthPolicy({ clock, onUse: tracker.record }), policies.route, policies.rules],
    proxy: { ...fetchProxy(), maxBodyBytes: 1024 * 1024, now: () => performance.now() },
    observe: metrics.observe,
  });

  async function call(method: string, path: string, o: CallOptions = {}) {
    const headers = new Headers(o.headers);
    const t = o.token === undefined ? token : o.token;
    if (t !== null && !headers.has("authorization")) headers.set("authorization", `Bearer ${t}`);
    let body: string | undefined = o.raw;
    if (o.body !== undefined) body = JSON.stringify(o.body);
    if (body !== undefined && !headers.has("content-type") && !o.untyped) {
      headers.set("content-type", "application/json");
    }
    // As a real client sends it; a Request built here would not have one.
    if (body !== undefined) headers.set("content-length", String(Buffer.byteLength(body)));
    // Like a real client, the Host header names the listener (tests may send another).
    if (!headers.has("host")) headers.set("host", "localhost");
    const request = new Request(`http://localhost${path}`, { method, headers, body });
    setClientIp(request, o.ip ?? "127.0.0.1");
    const res = await app.handle(request);
    const text = await res.text();
    // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON answers
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: res.status, headers: res.headers, text, json };
  }

  /** One data plane request with `secret`; resolves to the status. */
  async function data(secret: string, path = "/v1/things", method = "GET") {
    const res = await gateway(
      new Request(`http://gateway${path}`, { method, headers: { authorization: `Bearer ${secret}` } }),
      "127.0.0.1",
    );
    await res.arrayBuffer();
    return res.status;
  }

  return {
    dir,
    configPath,
    clock,
    database,
    state,
    metrics,
    tracker,
    app,
    call,
    data,
    setDraining(v: boolean) {
      draining = v;
    },
    /** What the writer thread would report. */
    setStore(status: StoreStatus, writable = status.healthy) {
      store = { status, writable };
    },
    writeConfig(text: string) {
      writeFileSync(configPath, text);
    },
    close() {
      database.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export type AdminFixture = ReturnType<typeof adminFixture>;

/** Every row the control API can change, to prove a refused request changed nothing. */
export function dumpState(f: AdminFixture): string {
  const q = (sql: string) => f.database.sqlite.query(sql).all();
  return JSON.stringify({
    tenants: q("SELECT * FROM tenants ORDER BY id"),
    keys: q("SELECT * FROM api_keys ORDER BY id"),
    audit: q("SELECT COUNT(*) AS n FROM audit_log"),
    version: f.state.snapshot.version,
  });
}

export function expectProblem(r: { status: number; headers: Headers; json: unknown }, status: number) {
  if (r.status !== status) throw new Error(`expected ${status}, got ${r.status}: ${JSON.stringify(r.json)}`);
  const ct = r.headers.get("content-type") ?? "";
  if (!ct.startsWith("application/problem+json")) throw new Error(`expected problem+json, got ${ct}`);
  const body = r.json as Record<string, unknown>;
  for (const k of ["type", "title", "status", "detail", "request_id"]) {
    if (!(k in body)) throw new Error(`problem without ${k}: ${JSON.stringify(body)}`);
  }
  if (body.status !== status) throw new Error(`problem status ${body.status} != ${status}`);
  if (body.request_id !== r.headers.get("x-request-id")) {
    throw new Error(`request_id ${body.request_id} is not the X-Request-Id ${r.headers.get("x-request-id")}`);
  }
  return body as { type: string; title: string; status: number; detail: string; errors?: string[] };
}

/** A problem body without its request_id, which differs per request: to compare bodies. */
export function withoutRequestId(problem: Record<string, unknown>): string {
  const { request_id: _, ...rest } = problem;
  return JSON.stringify(rest);
}

/** The app's routes as [method, concrete path] with ids filled in. */
export function concreteRoutes(f: AdminFixture, id = "acme"): [string, string][] {
  return f.app.routes.map((r) => [r.method, r.path.replace(/:[A-Za-z]+/g, id)]);
}
