import { describe, expect, test } from "bun:test";
import { parseConfig } from "../../src/config/load.ts";
import { openDb } from "../../src/db/open.ts";
import { createGateway } from "../../src/gateway/pipeline.ts";
import type { CompiledRoute, KeyView, Snapshot, TenantView } from "../../src/gateway/snapshot.ts";
import { GatewayState } from "../../src/gateway/state.ts";
import { ManualClock } from "../../src/lib/clock.ts";
import { silentLog } from "../../src/lib/log.ts";
import { createAuthPolicy } from "../../src/policies/auth/index.ts";
import type { RequestContext, RequestOutcome } from "../../src/policies/policy.ts";
import { createRoutePolicy } from "../../src/policies/route/index.ts";
import { createRulesPolicy } from "../../src/policies/rules/index.ts";
import { createUsageMetering } from "../../src/usage/index.ts";
import { usageRow } from "../../src/usage/row.ts";
import { fetchProxy } from "../support/proxy.ts";
import { T0 } from "./helpers.ts";

function ctx(over: Partial<RequestContext> = {}): RequestContext {
  return {
    requestId: "0190-req",
    method: "GET",
    path: "/v1/items",
    query: "",
    segments: ["v1", "items"],
    lenientSegments: ["v1", "items"],
    startedAt: T0,
    headers: new Headers(),
    snapshot: {} as Snapshot,
    tenant: { id: "acme" } as TenantView,
    key: { id: "acme-dev" } as KeyView,
    route: { match: "* /v1/**", cost: 3 } as CompiledRoute,
    cost: 3,
    wouldRefuse: null,
    responseHeaders: new Map(),
    onDone: () => {},
    ...over,
  };
}

const outcome = (over: Partial<RequestOutcome> = {}): RequestOutcome => ({
  status: 200,
  outcome: "ok",
  bytesIn: 12,
  bytesOut: 340,
  endedAt: T0 + 57,
  upstreamMs: 41.123456,
  cost: 3,
  billed: 3,
  ...over,
});

describe("usageRow", () => {
  test("maps every field of an admitted request", () => {
    expect(usageRow(ctx(), outcome())).toEqual({
      ts: T0,
      requestId: "0190-req",
      tenantId: "acme",
      keyId: "acme-dev",
      route: "* /v1/**",
      method: "GET",
      path: "/v1/items",
      status: 200,
      outcome: "ok",
      cost: 3,
      bytesIn: 12,
      bytesOut: 340,
      latencyMs: 57,
      upstreamMs: 41.123,
      wouldRefuse: null,
    });
  });

  test("the cost is what the request was billed, and shadow refusals are listed", () => {
    const r = usageRow(ctx({ wouldRefuse: ["forbidden", "rate_limited"] }), outcome({ cost: 7, billed: 5 }));
    expect(r).toMatchObject({ cost: 5, wouldRefuse: "forbidden,rate_limited" });
  });

  test("an unauthenticated request has no tenant, key or route", () => {
    const r = usageRow(
      ctx({ tenant: undefined, key: undefined, route: undefined }),
      outcome({ status: 401, outcome: "rejected:unauthorized", cost: 0, billed: 0 }),
    );
    expect(r).toMatchObject({ tenantId: null, keyId: null, route: null, cost: 0 });
  });

  test("a key pasted into the path is blanked, and nothing after ? or # survives", () => {
    const headers = new Headers({
      authorization: "Bearer gh_live_SECRET_0001",
      "x-api-key": "other-key-0002",
    });
    const r = usageRow(
      ctx({ headers, path: "/v1/keys/gh_live_SECRET_0001/other-key-0002?token=abc#frag" }),
      outcome(),
    );
    expect(r.path).toBe("/v1/keys/[redacted]/[redacted]");
    expect(JSON.stringify(r)).not.toContain("SECRET");
    expect(JSON.stringify(r)).not.toContain("token");
    // The scheme in any case, spaces or tabs around it; a fragment before a query cuts there too.
    for (const authorization of ["bearer   gh_live_SECRET_0001", " BEARER\tgh_live_SECRET_0001 "]) {
      const spelled = usageRow(
        ctx({ headers: new Headers({ authorization }), path: "/v1/gh_live_SECRET_0001#a?b" }),
        outcome(),
      );
      expect(spelled.path).toBe("/v1/[redacted]");
    }
    const short = usageRow(
      ctx({ headers: new Headers({ authorization: "Bearer abc" }), path: "/v1/abc" }),
      outcome(),
    );
    expect(short.path).toBe("/v1/abc");
  });

  test("non-finite and negative numbers become 0 rather than a row SQLite refuses", () => {
    const r = usageRow(
      ctx(),
      outcome({ billed: Number.NaN, bytesIn: -5, endedAt: T0 - 10, upstreamMs: Number.NaN }),
    );
    expect(r).toMatchObject({ cost: 0, bytesIn: 0, latencyMs: 0, upstreamMs: 0 });
  });
});

describe("through the data plane", () => {
  const yaml = `version: 1
upstreams:
  sandbox: { mock: echo }
plans:
  basic:
    rules: [{ allow: "GET /v1/**" }]
routes:
  - match: "* /v1/**"
    upstream: sandbox
    cost: 2
tenants:
  acme:
    plan: basic
    keys: [{ id: acme-dev, secret: acme-secret-0001 }]
`;

  test("one row per request, refused ones included, with no key or query string anywhere", async () => {
    const clock = new ManualClock(T0);
    const database = openDb(":memory:");
    const state = new GatewayState(
      "gateway.yaml",
      database,
      clock,
      {},
      parseConfig(yaml, "gateway.yaml", {}),
    );
    const usage = createUsageMetering({ database, clock, log: silentLog });
    const handle = createGateway({
      clock,
      snapshot: () => state.snapshot,
      policies: [createAuthPolicy({ clock }), createRoutePolicy(), createRulesPolicy()],
      proxy: { ...fetchProxy(), maxBodyBytes: 1024, now: () => performance.now() },
      observe: usage.observe,
    });
    const send = async (path: string, headers: Record<string, string>, method = "GET") => {
      const res = await handle(new Request(`http://localhost${path}`, { method, headers }), null);
      await res.arrayBuffer();
      return res.status;
    };
    const key = { "x-api-key": "acme-secret-0001" };
    expect(await send("/v1/items?api_key=acme-secret-0001&sig=topsecret", key)).toBe(200);
    expect(await send("/v1/items?sig=topsecret", {})).toBe(401);
    expect(await send("/nowhere?sig=topsecret", key)).toBe(404);
    expect(await send("/v1/items", key, "DELETE")).toBe(403);
    await usage.close();

    const rows = database.sqlite
      .query("SELECT tenant_id, key_id, route, method, path, status, outcome, cost FROM usage ORDER BY id")
      .all();
    expect(rows).toEqual([
      {
        tenant_id: "acme",
        key_id: "acme-dev",
        route: "* /v1/**",
        method: "GET",
        path: "/v1/items",
        status: 200,
        outcome: "ok",
        cost: 2,
      },
      {
        tenant_id: null,
        key_id: null,
        route: null,
        method: "GET",
        path: "/v1/items",
        status: 401,
        outcome: "rejected:unauthorized",
        cost: 0,
      },
      {
        tenant_id: "acme",
        key_id: "acme-dev",
        route: null,
        method: "GET",
        path: "/nowhere",
        status: 404,
        outcome: "rejected:not_found",
        cost: 0,
      },
      {
        tenant_id: "acme",
        key_id: "acme-dev",
        route: "* /v1/**",
        method: "DELETE",
        path: "/v1/items",
        status: 403,
        outcome: "rejected:forbidden",
        cost: 0,
      },
    ]);
    const dump = JSON.stringify(database.sqlite.query("SELECT * FROM usage").all());
    expect(dump).not.toContain("acme-secret-0001");
    expect(dump).not.toContain("topsecret");
    database.close();
  });
});
