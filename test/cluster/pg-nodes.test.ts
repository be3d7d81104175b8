/**
 * Cluster mode end to end: gatehouse processes (`gatehouse serve`, real timers, a database file
 * each) against one PostgreSQL of the test's own, which the tests stop and start. Waits are polls
 * with generous deadlines; how fast a change travels (a notification, or the check each second) is
 * shown deterministically in pg-objects.test.ts.
 */
import { afterAll, afterEach, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startPostgres, type TestPostgres } from "../support/postgres.ts";
import { type GatehouseProcess, gatehouseCommand, startProcess } from "../support/process.ts";
import { clusterYaml, eventually, TOKEN } from "./pg-support.ts";

setDefaultTimeout(40_000);

let pg: TestPostgres;
let running: GatehouseProcess[] = [];
let dirs: string[] = [];
let databases = 0;

beforeAll(async () => {
  pg = await startPostgres();
}, 30_000);
afterAll(async () => {
  await pg?.close();
});
afterEach(async () => {
  await Promise.all(running.map((p) => stop(p)));
  running = [];
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
});

interface Node {
  proc: GatehouseProcess;
  dir: string;
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON answers
  call(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }>;
  data(key: string): Promise<number>;
}

async function start(yaml: string, dir = mkdtempSync(join(tmpdir(), "gatehouse-node-"))): Promise<Node> {
  if (!dirs.includes(dir)) dirs.push(dir);
  writeFileSync(join(dir, "gateway.yaml"), yaml);
  const proc = await startProcess(
    gatehouseCommand(),
    [
      "serve",
      join(dir, "gateway.yaml"),
      "--db",
      join(dir, "gatehouse.db"),
      "--listen",
      "127.0.0.1:0",
      "--admin",
      "127.0.0.1:0",
    ],
    { cwd: dir },
  );
  running.push(proc);
  return {
    proc,
    dir,
    async call(method, path, body) {
      const res = await fetch(`${proc.adminUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await res.text();
      return { status: res.status, json: text ? JSON.parse(text) : undefined };
    },
    async data(key) {
      const res = await fetch(`${proc.dataUrl}/v1/items`, { headers: { "x-api-key": key } });
      await res.arrayBuffer();
      return res.status;
    },
  };
}

async function stop(p: GatehouseProcess): Promise<void> {
  if (p.proc.exitCode === null) p.proc.kill("SIGTERM");
  await p.proc.exited;
  running = running.filter((r) => r !== p);
}

async function newKey(node: Node, tenant: string): Promise<{ id: string; secret: string }> {
  const r = await node.call("POST", `/tenants/${tenant}/keys`, {});
  expect(r.status).toBe(201);
  return { id: r.json.key.id, secret: r.json.secret };
}

describe("two gatehouse processes, one PostgreSQL", () => {
  test("a key made on one node works on the other, and a key revoked on one is refused on both", async () => {
    const url = await pg.createDatabase(`n${++databases}`);
    const [a, b] = await Promise.all([start(clusterYaml(url)), start(clusterYaml(url))]);
    expect((await a.call("POST", "/tenants", { id: "initech", plan: "free" })).status).toBe(201);
    const key = await newKey(a, "initech");
    await eventually("node B accepts the key made on node A", async () => (await b.data(key.secret)) === 200);

    expect((await b.call("DELETE", `/keys/${key.id}`)).status).toBe(204);
    await eventually(
      "node A refuses the key revoked on node B",
      async () => (await a.data(key.secret)) === 401,
    );
    expect(await b.data(key.secret)).toBe(401);
  });

  test("PostgreSQL restarting loses no usage row of a request either node answered", async () => {
    const db = `n${++databases}`;
    const url = await pg.createDatabase(db);
    const [a, b] = await Promise.all([start(clusterYaml(url)), start(clusterYaml(url))]);
    const answered = { a: 0, b: 0 };
    const send = async (rounds: number) => {
      for (let i = 0; i < rounds; i++) {
        expect(await a.data("gh_cluster_acme_0001")).toBe(200);
        answered.a++;
        expect(await b.data("gh_cluster_acme_0001")).toBe(200);
        answered.b++;
      }
    };
    await send(20);
    await pg.stop();
    try {
      // Served all the same while PostgreSQL is down; the rows wait in each node's database.
      await send(20);
      await eventually("node A reports the outage", async () =>
        /PostgreSQL cannot be reached/.test((await a.call("GET", "/readyz")).json.detail ?? ""),
      );
    } finally {
      await pg.start();
    }
    await send(20);
    const count = async () =>
      (
        await pg.query<{ node: string; rows: string; distinct_rows: string }>(
          "SELECT count(*) AS rows, count(DISTINCT (node, local_id)) AS distinct_rows FROM usage",
          db,
        )
      )[0]!;
    await eventually(
      "PostgreSQL holds a row for every request answered",
      async () => {
        const c = await count();
        return Number(c.rows) >= answered.a + answered.b;
      },
      20_000,
    );
    const c = await count();
    expect(Number(c.rows)).toBe(answered.a + answered.b);
    expect(Number(c.distinct_rows)).toBe(answered.a + answered.b);
    const perNode = await pg.query<{ n: string }>(
      "SELECT count(*) AS n FROM usage GROUP BY node ORDER BY n",
      db,
    );
    expect(perNode.map((r) => Number(r.n))).toEqual([answered.a, answered.b].sort((x, y) => x - y));
  });

  test("a node starts and serves from its own copy while PostgreSQL is down, and catches up once it is back", async () => {
    const url = await pg.createDatabase(`n${++databases}`);
    const [a, b] = await Promise.all([start(clusterYaml(url)), start(clusterYaml(url))]);
    await a.call("POST", "/tenants", { id: "initech", plan: "free" });
    const key = await newKey(a, "initech");
    await eventually("node B accepts the key", async () => (await b.data(key.secret)) === 200);
    await stop(b.proc);

    await pg.stop();
    let again: Node;
    try {
      again = await start(clusterYaml(url), b.dir);
      expect(await again.data(key.secret)).toBe(200);
      const ready = await again.call("GET", "/readyz");
      expect(ready.status).toBe(200);
      expect(ready.json.detail).toContain("PostgreSQL cannot be reached");
      expect((await again.call("POST", "/tenants", { id: "hooli", plan: "free" })).status).toBe(503);
    } finally {
      await pg.start();
    }
    await eventually("node A accepts changes again", async () => {
      return (await a.call("POST", "/tenants", { id: "hooli", plan: "free" })).status === 201;
    });
    const later = await newKey(a, "hooli");
    await eventually(
      "the restarted node serves a key made after the outage",
      async () => (await again.data(later.secret)) === 200,
    );
    await eventually(
      "the restarted node is ready",
      async () => (await again.call("GET", "/readyz")).json.status === "ready",
    );
  });

  test("/readyz reports two processes running on copies of one database file (one node id)", async () => {
    const url = await pg.createDatabase(`n${++databases}`);
    const first = await start(clusterYaml(url));
    await stop(first.proc);
    const copy = mkdtempSync(join(tmpdir(), "gatehouse-node-"));
    copyFileSync(join(first.dir, "gatehouse.db"), join(copy, "gatehouse.db"));
    const [a, b] = await Promise.all([start(clusterYaml(url), first.dir), start(clusterYaml(url), copy)]);
    await eventually("a node reports the other process on its id", async () => {
      const details = await Promise.all(
        [a, b].map(async (n) => (await n.call("GET", "/readyz")).json.detail ?? ""),
      );
      return details.some((d) =>
        /Another gatehouse process \(\S+ pid \d+\) runs with this node's id/.test(d),
      );
    });
  });

  test("/readyz reports nodes running different config files", async () => {
    const url = await pg.createDatabase(`n${++databases}`);
    const [a, c] = await Promise.all([
      start(clusterYaml(url)),
      start(clusterYaml(url, "  gold: { rules: [{ allow: '* /v1/**' }] }")),
    ]);
    await eventually("node A reports that the configs differ", async () => {
      const r = await a.call("GET", "/readyz");
      return (
        r.status === 200 &&
        /Nodes run different config files: 1 on [0-9a-f]{12} .*; 1 on [0-9a-f]{12} /.test(r.json.detail ?? "")
      );
    });
    await stop(c.proc);
    // A node that stops says so: the others need not wait for its heartbeat to age.
    await eventually(
      "node A is ready once the other config is gone",
      async () => (await a.call("GET", "/readyz")).json.status === "ready",
    );
  });
});
