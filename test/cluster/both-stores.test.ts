/**
 * Cluster mode with both stores: limits in Redis and objects in PostgreSQL, on two nodes in this
 * process. A key made on one node is limited across both, and /readyz names each store that is away.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { startPostgres, type TestPostgres } from "../support/postgres.ts";
import { startRedis, type TestRedis } from "../support/redis.ts";
import { clusterYaml, eventually, startNode, type TestNode } from "./pg-support.ts";
import { freshPrefix } from "./redis-support.ts";

let pg: TestPostgres;
let redis: TestRedis;
setDefaultTimeout(30_000);

beforeAll(async () => {
  [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
}, 30_000);
afterAll(async () => {
  await Promise.all([pg?.close(), redis?.stop()]);
});

test("a key made on one node is limited across both; /readyz names each store that is away", async () => {
  const url = await pg.createDatabase("both");
  const yaml = clusterYaml(url)
    .replace(
      `cluster: { postgres: "${url}" }`,
      `cluster: { postgres: "${url}", redis: "${redis.url}", keyPrefix: "${freshPrefix()}", redisTimeout: 2s }`,
    )
    .replace(
      'free: { rules: [{ allow: "* /v1/**" }] }',
      'free: { rules: [{ allow: "* /v1/**" }], limits: [{ limit: 3, window: 1m }] }',
    );
  const nodes: TestNode[] = [];
  try {
    const a = await startNode(yaml);
    nodes.push(a);
    const b = await startNode(yaml);
    nodes.push(b);
    await a.call("POST", "/tenants", { id: "initech", plan: "free" });
    const made = await a.call("POST", "/tenants/initech/keys", {});
    expect(made.status).toBe(201);
    await eventually(
      "node B serves the key made on node A",
      async () => (await b.data(made.json.secret)) === 200,
    );
    // One admitted on B above; the limit of 3 a minute holds across both nodes.
    expect([await a.data(made.json.secret), await b.data(made.json.secret)]).toEqual([200, 200]);
    expect([await a.data(made.json.secret), await b.data(made.json.secret)]).toEqual([429, 429]);

    await redis.kill();
    await pg.stop();
    try {
      b.tick();
      await eventually("node B names both stores", async () => {
        await b.data(made.json.secret); // a limited request meets the lost Redis
        const detail: string = (await b.call("GET", "/readyz")).json.detail ?? "";
        return /PostgreSQL cannot be reached/.test(detail) && /Redis/.test(detail);
      });
      expect((await b.call("GET", "/readyz")).json.status).toBe("degraded");
    } finally {
      await Promise.all([pg.start(), redis.restart()]);
    }
  } finally {
    for (const n of nodes) await n.close();
  }
});
