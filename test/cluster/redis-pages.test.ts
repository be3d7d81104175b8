/**
 * The dashboard and the portal in a cluster sharing limits in Redis: a tenant's quota burn-down is the
 * cluster's count, whichever node serves the page, not the node's own.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { ManualClock } from "../../src/lib/clock.ts";
import { startTestGateway, type TestGateway } from "../support/gateway.ts";
import { startRedis, type TestRedis } from "../support/redis.ts";
import { freshPrefix } from "./redis-support.ts";

const TOKEN = "p9Xv2Lq7Rm4Tz8Wb3Nc6Yh5K";
let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis.stop();
});

const yaml = (prefix: string) => `version: 1
server: { adminToken: ${TOKEN}, portal: "127.0.0.1:0" }
cluster: { redis: "${redis.url}", keyPrefix: "${prefix}", redisTimeout: 2s }
upstreams: { echo: { mock: echo } }
plans:
  free:
    rules: [{ allow: "* /v1/**" }]
    quota: { limit: 100, period: day }
routes: [{ match: "* /v1/**", upstream: echo }]
tenants:
  acme:
    plan: free
    keys: [{ id: acme-dev, secret: acme-secret-0001 }]
`;

test("the dashboard and the portal on one node show the quota units counted on every node", async () => {
  const prefix = freshPrefix();
  const clock = new ManualClock(Date.UTC(2030, 0, 1, 12));
  const nodes: TestGateway[] = [];
  try {
    const a = startTestGateway(yaml(prefix), { clock });
    nodes.push(a);
    const b = startTestGateway(yaml(prefix), { clock });
    nodes.push(b);
    await a.sharedCounters!.ready;
    await b.sharedCounters!.ready;
    const get = async (url: string) => {
      const r = await fetch(`${url}/v1/items`, { headers: { "x-api-key": "acme-secret-0001" } });
      await r.arrayBuffer();
      return r.status;
    };
    for (let i = 0; i < 2; i++) expect(await get(a.dataUrl)).toBe(200);
    for (let i = 0; i < 3; i++) expect(await get(b.dataUrl)).toBe(200);

    const admin = (path: string, init: RequestInit = {}) =>
      fetch(`${a.adminUrl}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      });
    const overview = (await (await admin("/ui/api/overview")).json()) as {
      tenants: { id: string; quotas: { name: string; used: number }[] }[];
    };
    expect(overview.tenants.find((t) => t.id === "acme")!.quotas).toMatchObject([
      { name: "quota-day", used: 5 },
    ]);

    const link = (await (
      await admin("/tenants/acme/portal-links", { method: "POST", body: "{}" })
    ).json()) as {
      url: string;
    };
    const signIn = await fetch(`${a.portalUrl}/api/session`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ token: link.url.slice(link.url.indexOf("#") + 1) }),
    });
    expect(signIn.status).toBe(201);
    const cookie = /^([^;]+);/.exec(signIn.headers.get("set-cookie")!)![1]!;
    const quota = (await (await fetch(`${a.portalUrl}/api/quota`, { headers: { cookie } })).json()) as {
      quotas: { name: string; used: number; remaining: number }[];
    };
    expect(quota.quotas).toMatchObject([{ name: "quota-day", used: 5, remaining: 95 }]);
  } finally {
    for (const n of nodes) await n.close();
  }
});
