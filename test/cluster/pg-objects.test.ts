/**
 * Cluster mode's shared objects with two nodes in this process against one PostgreSQL of the test's
 * own (a database per test). Each node runs its once-a-second version check only when the test says
 * (`tick`), so what reaches a node without a tick came through LISTEN/NOTIFY.
 */
import { afterAll, afterEach, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startGatewayUnlocked } from "../../src/app.ts";
import type { ChangeSet } from "../../src/cluster/postgres/capture.ts";
import { connectPg } from "../../src/cluster/postgres/connect.ts";
import { publish } from "../../src/cluster/postgres/publish.ts";
import { currentVersion } from "../../src/cluster/postgres/pull.ts";
import * as pgSchema from "../../src/cluster/postgres/schema.ts";
import { startPostgres, type TestPostgres } from "../support/postgres.ts";
import { clusterYaml, eventually, MASTER_KEY, startNode, type TestNode, TOKEN } from "./pg-support.ts";

let pg: TestPostgres;
let nodes: TestNode[] = [];
let databases = 0;
setDefaultTimeout(20_000);

beforeAll(async () => {
  pg = await startPostgres();
}, 30_000);
afterAll(async () => {
  await pg?.close();
});
afterEach(async () => {
  await Promise.all(nodes.map((n) => n.close()));
  nodes = [];
});

async function cluster(extraA = "", extraB = extraA): Promise<{ url: string; a: TestNode; b: TestNode }> {
  const url = await pg.createDatabase(`t${++databases}`);
  const a = await startNode(clusterYaml(url, extraA));
  nodes.push(a);
  const b = await startNode(clusterYaml(url, extraB));
  nodes.push(b);
  return { url, a, b };
}

async function newKey(node: TestNode, tenant: string): Promise<{ id: string; secret: string }> {
  const r = await node.call("POST", `/tenants/${tenant}/keys`, {});
  expect(r.status).toBe(201);
  return { id: r.json.key.id, secret: r.json.secret };
}

/** The node's gatehouse_cluster_* gauges from GET /metrics. */
async function clusterMetrics(node: TestNode): Promise<Record<string, number>> {
  const text = await (
    await fetch(`${node.adminUrl}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })
  ).text();
  return Object.fromEntries(
    [...text.matchAll(/^(gatehouse_cluster_\w+) (\S+)$/gm)].map((m) => [m[1]!, Number(m[2])]),
  );
}

describe("changes reach every node", () => {
  test("a tenant and key made on one node serve on the other, and a revocation on either refuses everywhere, without a version check", async () => {
    const { a, b } = await cluster();
    expect((await a.call("POST", "/tenants", { id: "initech", plan: "free" })).status).toBe(201);
    const key = await newKey(a, "initech");
    expect(await a.data(key.secret)).toBe(200);
    await eventually("node B serves the new key", async () => (await b.data(key.secret)) === 200);
    expect((await b.call("GET", "/tenants/initech")).json).toMatchObject({
      id: "initech",
      source: "api",
      keys: 1,
    });

    expect((await b.call("DELETE", `/keys/${key.id}`)).status).toBe(204);
    expect(await b.data(key.secret)).toBe(401);
    await eventually("node A refuses the revoked key", async () => (await a.data(key.secret)) === 401);
    expect((await a.call("GET", `/keys/${key.id}`)).status).toBe(404);
  });

  test("a change whose notification is lost arrives with the next version check, one second later", async () => {
    const { a, b } = await cluster();
    await a.call("POST", "/tenants", { id: "initech", plan: "free" });
    const key = await newKey(a, "initech");
    await eventually("node B serves the key", async () => (await b.data(key.secret)) === 200);

    // Disabled behind both nodes' backs: a new version, no NOTIFY (as if the notification was lost).
    await pg.query(
      `WITH v AS (UPDATE cluster_state SET version = version + 1 RETURNING version)
       UPDATE api_keys SET disabled = true, version = (SELECT version FROM v) WHERE id = '${key.id}'`,
      `t${databases}`,
    );
    expect(await b.data(key.secret)).toBe(200);
    b.tick();
    await eventually("node B refuses the disabled key", async () => (await b.data(key.secret)) === 401);
  });

  test("tenant changes, deletions with their keys, credentials and the audit log are shared", async () => {
    const { a, b } = await cluster();
    await a.call("POST", "/tenants", { id: "initech", plan: "free" });
    const key = await newKey(a, "initech");
    expect((await a.call("PATCH", "/tenants/initech", { disabled: true })).status).toBe(200);
    await eventually(
      "node B has the disabled tenant",
      async () => (await b.call("GET", "/tenants/initech")).json?.disabled === true,
    );
    expect(await b.data(key.secret)).toBe(401);

    expect((await a.call("PUT", "/credentials/petstore-token", { value: "s3cret-value" })).status).toBe(201);
    await eventually(
      "node B holds the credential",
      async () => (await b.call("GET", "/credentials/petstore-token")).status === 200,
    );
    // Decrypted on B with the master key every node shares: B could inject it.
    expect((await b.call("GET", "/credentials/petstore-token")).json.available).toBe(true);

    expect((await b.call("DELETE", "/tenants/initech")).status).toBe(204);
    expect((await b.call("DELETE", "/credentials/petstore-token")).status).toBe(204);
    await eventually(
      "node A dropped the tenant",
      async () => (await a.call("GET", "/tenants/initech")).status === 404,
    );
    expect((await a.call("GET", `/keys/${key.id}`)).status).toBe(404);
    await eventually(
      "node A dropped the credential",
      async () => (await a.call("GET", "/credentials/petstore-token")).status === 404,
    );

    // Each node's audit log holds every node's changes to the shared objects.
    for (const node of [a, b]) {
      const actions = (await node.call("GET", "/audit?limit=50")).json.items.map(
        (i: { action: string }) => i.action,
      );
      expect(actions.filter((x: string) => x !== "config.sync")).toEqual([
        "credential.delete",
        "tenant.delete",
        "credential.create",
        "tenant.disable",
        "key.create",
        "tenant.create",
      ]);
    }
  });

  test("two nodes creating the same tenant at once: one succeeds, the other gets 409", async () => {
    const { a, b } = await cluster();
    const answers = await Promise.all([
      a.call("POST", "/tenants", { id: "initech", plan: "free", name: "from A" }),
      b.call("POST", "/tenants", { id: "initech", plan: "free", name: "from B" }),
    ]);
    expect(answers.map((r) => r.status).sort()).toEqual([201, 409]);
    const winner = answers.find((r) => r.status === 201)!.json.name;
    for (const node of [a, b]) {
      await eventually(
        "both nodes hold the winner",
        async () => (await node.call("GET", "/tenants/initech")).json?.name === winner,
      );
    }
  });
});

describe("a node that stops", () => {
  test("leaves no heartbeat behind, even when it stops during a version check", async () => {
    const url = await pg.createDatabase(`t${++databases}`);
    const database = `t${databases}`;
    for (let round = 0; round < 5; round++) {
      const node = await startNode(clusterYaml(url));
      node.tick();
      await eventually("the node's heartbeat is written", async () => {
        const rows = await pg.query<{ n: number }>("SELECT count(*)::int AS n FROM cluster_nodes", database);
        return rows[0]!.n === 1;
      });
      // A check starts, and the node stops before it has ended: its heartbeat must not outlive it.
      node.tick();
      await node.close();
      const rows = await pg.query<{ n: number }>("SELECT count(*)::int AS n FROM cluster_nodes", database);
      expect({ round, left: rows[0]!.n }).toEqual({ round, left: 0 });
    }
  });
});

describe("each node applies what its own config can serve", () => {
  test("a tenant on a plan this node's config lacks waits (and /readyz says so, and that configs differ) until a reload declares it", async () => {
    const gold = "  gold: { rules: [{ allow: '* /v1/**' }] }";
    const { url, a, b } = await cluster(gold, "");
    expect((await a.call("POST", "/tenants", { id: "bigco", plan: "gold" })).status).toBe(201);
    const key = await newKey(a, "bigco");
    await eventually("node B reports what waits", async () => {
      const r = await b.call("GET", "/readyz");
      return /tenant "bigco" \(plan "gold" is not declared in this node's config\)/.test(r.json.detail ?? "");
    });
    expect(await b.data(key.secret)).toBe(401);
    expect((await b.call("GET", "/readyz")).status).toBe(200);
    // Both have said who they are (B at start, A at its next check): the configs differ.
    a.tick();
    await eventually("node A sees the nodes disagree", async () => {
      const detail: string = (await a.call("GET", "/readyz")).json.detail ?? "";
      // One group names this node, the other the node's host and pid (sorted by node id, not by who asks).
      return (
        /Nodes run different config files: 1 on [0-9a-f]{12} \((this node|\S+ pid \d+)\); 1 on [0-9a-f]{12} \((this node|\S+ pid \d+)\)/.test(
          detail,
        ) && detail.includes("(this node)")
      );
    });

    b.writeConfig(clusterYaml(url, gold));
    expect((await b.call("POST", "/config/reload")).status).toBe(200);
    await eventually("node B serves the tenant's key", async () => (await b.data(key.secret)) === 200);
    await eventually("both nodes are ready", async () => {
      // Each says which config it runs at its next check, and reads what the other said.
      b.tick();
      a.tick();
      const [ra, rb] = await Promise.all([a.call("GET", "/readyz"), b.call("GET", "/readyz")]);
      return ra.json.status === "ready" && rb.json.status === "ready";
    });
  });
});

describe("each node applies what its own config can serve (names)", () => {
  test("a tenant whose external id names another tenant on this node waits; later changes, revocations included, still apply", async () => {
    const url = await pg.createDatabase(`t${++databases}`);
    const a = await startNode(clusterYaml(url));
    nodes.push(a);
    // B's file gives acme an external id that A's API tenant will claim too: only B's snapshot clashes.
    const b = await startNode(
      clusterYaml(url).replace(
        "    plan: free\n    keys:",
        "    plan: free\n    externalIds: [bigco-ext]\n    keys:",
      ),
    );
    nodes.push(b);
    await a.call("POST", "/tenants", { id: "other", plan: "free" });
    const other = await newKey(a, "other");
    await eventually("node B serves the other key", async () => (await b.data(other.secret)) === 200);

    expect(
      (await a.call("POST", "/tenants", { id: "bigco", plan: "free", externalIds: ["bigco-ext"] })).status,
    ).toBe(201);
    const key = await newKey(a, "bigco");
    await eventually("node B reports that it cannot serve bigco", async () => {
      const detail: string = (await b.call("GET", "/readyz")).json.detail ?? "";
      return detail.includes('tenant "bigco" ("bigco-ext" names tenant "acme" on this node)');
    });
    expect(await b.data(key.secret)).toBe(401);
    expect(await b.data("gh_cluster_acme_0001")).toBe(200);

    expect((await a.call("DELETE", `/keys/${other.id}`)).status).toBe(204);
    await eventually("node B refuses the revoked key", async () => (await b.data(other.secret)) === 401);
  });
});

describe("turning cluster mode on", () => {
  test("a node that ran on its own shares its API-made tenants, keys and credentials when it first meets PostgreSQL", async () => {
    const dir = mkdtempSync(join(tmpdir(), "gatehouse-join-"));
    try {
      const url = await pg.createDatabase(`t${++databases}`);
      const db = join(dir, "gatehouse.db");
      const single = clusterYaml(url).replace(/^cluster:.*\n/m, "");
      const configPath = join(dir, "gateway.yaml");
      writeFileSync(configPath, single);
      const alone = await startGatewayUnlocked({
        configPath,
        db,
        listen: "127.0.0.1:0",
        admin: "127.0.0.1:0",
        env: { GATEHOUSE_MASTER_KEY: MASTER_KEY },
        log: () => {},
        watchConfig: false,
      });
      const headers = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
      const post = (path: string, body: unknown, method = "POST") =>
        fetch(`${alone.adminUrl}${path}`, { method, headers, body: JSON.stringify(body) });
      expect((await post("/tenants", { id: "initech", plan: "free" })).status).toBe(201);
      const secret = ((await (await post("/tenants/initech/keys", {})).json()) as { secret: string }).secret;
      expect((await post("/credentials/old-token", { value: "kept" }, "PUT")).status).toBe(201);
      await alone.stop();

      const a = await startNode(clusterYaml(url), { db, dir });
      nodes.push(a);
      const b = await startNode(clusterYaml(url));
      nodes.push(b);
      expect(await b.data(secret)).toBe(200);
      expect((await b.call("GET", "/credentials/old-token")).json.available).toBe(true);
      expect(await a.data(secret)).toBe(200);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("usage", () => {
  test("every node's usage rows reach PostgreSQL, and a report on either node counts them all", async () => {
    const { a, b } = await cluster();
    for (let i = 0; i < 3; i++) expect(await a.data("gh_cluster_acme_0001")).toBe(200);
    for (let i = 0; i < 2; i++) expect(await b.data("gh_cluster_acme_0001")).toBe(200);
    const day = "from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z";
    for (const node of [a, b]) {
      await eventually("the report counts both nodes' requests", async () => {
        const r = await node.call("GET", `/usage?${day}&groupBy=key&tenant=acme`);
        return r.json.total?.requests === 5;
      });
    }
    const rows = await pg.query<{ node: string; n: string }>(
      "SELECT node, count(*) AS n FROM usage GROUP BY node ORDER BY n",
      `t${databases}`,
    );
    expect(rows.map((r) => Number(r.n))).toEqual([2, 3]);
    const csv = await fetch(`${b.adminUrl}/usage/export?format=csv&${day}`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect((await csv.text()).trim().split("\n")).toHaveLength(1 + 5);
  });
});

describe("the tenant portal", () => {
  test("a key a tenant makes in one node's portal serves on the other; its usage and refusals count both nodes", async () => {
    const url = await pg.createDatabase(`t${++databases}`);
    const yaml = clusterYaml(url)
      .replace(`server: { adminToken: ${TOKEN} }`, `server: { adminToken: ${TOKEN}, portal: "127.0.0.1:0" }`)
      .replace(
        'free: { rules: [{ allow: "* /v1/**" }] }',
        'free: { rules: [{ allow: "* /v1/**" }, { deny: "* /v1/secret" }], portal: { maxKeys: 2 } }',
      );
    const a = await startNode(yaml);
    nodes.push(a);
    const b = await startNode(yaml);
    nodes.push(b);

    const link = await a.call("POST", "/tenants/acme/portal-links", {});
    expect(link.status).toBe(201);
    const signIn = await fetch(`${a.portalUrl}/api/session`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ token: link.json.url.slice(link.json.url.indexOf("#") + 1) }),
    });
    expect(signIn.status).toBe(201);
    const cookie = /^([^;]+);/.exec(signIn.headers.get("set-cookie")!)![1]!;
    const { csrf } = (await signIn.json()) as { csrf: string };
    const portal = async (method: string, path: string) => {
      const r = await fetch(`${a.portalUrl}${path}`, {
        method,
        headers: { cookie, "x-csrf-token": csrf, "content-type": "application/json" },
        ...(method === "POST" ? { body: "{}" } : {}),
      });
      // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON answers
      return { status: r.status, json: (await r.json()) as any };
    };

    const made = await portal("POST", "/api/keys");
    expect(made.status).toBe(201);
    // It went through PostgreSQL, so the other node serves it without a version check.
    await eventually(
      "node b serves the portal-made key",
      async () => (await b.data(made.json.secret)) === 200,
    );
    const shared = await pg.query<{ id: string }>(
      "SELECT id FROM api_keys WHERE tenant_id = 'acme'",
      `t${databases}`,
    );
    expect(shared.map((r) => r.id)).toContain(made.json.key.id);

    expect(await a.data("gh_cluster_acme_0001")).toBe(200);
    expect(await b.data("gh_cluster_acme_0001", "/v1/secret")).toBe(403);
    const day = "from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z";
    await eventually("node a's portal counts both nodes' requests", async () => {
      const r = await portal("GET", `/api/usage?${day}`);
      return r.json.total?.requests === 3;
    });
    const refusals = await portal("GET", `/api/refusals?${day}`);
    expect(refusals.json.items.map((r: { code: string; path: string }) => [r.code, r.path])).toEqual([
      ["forbidden", "/v1/secret"],
    ]);
  });
});

describe("while PostgreSQL is away", () => {
  test("a node keeps serving its copy, refuses changes with 503 and says so in /readyz; it catches up when PostgreSQL is back", async () => {
    const { a, b } = await cluster();
    await a.call("POST", "/tenants", { id: "initech", plan: "free" });
    const key = await newKey(a, "initech");
    await eventually("node B serves the key", async () => (await b.data(key.secret)) === 200);

    await pg.stop();
    try {
      b.tick();
      await eventually("node B says PostgreSQL is away", async () =>
        /PostgreSQL cannot be reached/.test((await b.call("GET", "/readyz")).json.detail ?? ""),
      );
      const ready = await b.call("GET", "/readyz");
      expect(ready.status).toBe(200);
      expect(ready.json.status).toBe("degraded");
      expect(await b.data(key.secret)).toBe(200);
      expect((await b.call("GET", "/tenants/initech")).status).toBe(200);
      const refused = await b.call("POST", "/tenants", { id: "hooli", plan: "free" });
      expect(refused.status).toBe(503);
      expect(refused.json.detail).toContain("PostgreSQL cannot be reached");
      const report = await b.call("GET", "/usage?groupBy=key");
      expect(report.status).toBe(503);
      expect(await clusterMetrics(b)).toMatchObject({
        gatehouse_cluster_postgres_reachable: 0,
        gatehouse_cluster_objects_waiting: 0,
      });
      // The outage is logged when it begins, then once a minute while it lasts.
      const still = () => b.lines.filter((l) => l.msg.startsWith("PostgreSQL still cannot be reached"));
      for (let i = 0; i < 59; i++) b.tick();
      await eventually("the first minute has passed", () => {
        if (still().length === 0) b.tick();
        return still().length === 1;
      });
      expect(b.lines.filter((l) => l.msg.startsWith("PostgreSQL cannot be reached"))).toHaveLength(1);
    } finally {
      await pg.start();
    }
    b.tick();
    await eventually(
      "node B is ready again",
      async () => (await b.call("GET", "/readyz")).json.status === "ready",
    );
    expect((await b.call("POST", "/tenants", { id: "hooli", plan: "free" })).status).toBe(201);
    const back = await clusterMetrics(b);
    expect(back.gatehouse_cluster_postgres_reachable).toBe(1);
    expect(back.gatehouse_cluster_objects_version).toBeGreaterThan(0);
    a.tick();
    await eventually(
      "node A has the change made after the outage",
      async () => (await a.call("GET", "/tenants/hooli")).status === 200,
    );
  });
});

describe("publishing a change judged on an older copy", () => {
  test("a row changed on another node since is not overwritten; a key of a tenant deleted since is refused; a tenant's keys may go before or after it", async () => {
    const { url, a } = await cluster();
    await a.call("POST", "/tenants", { id: "initech", plan: "free" });
    const key = await newKey(a, "initech");
    const pgc = connectPg(url);
    try {
      const [tenant] = await pgc.db.select().from(pgSchema.tenants);
      const [keyRow] = await pgc.db.select().from(pgSchema.apiKeys);
      const { version: tenantVersion, ...tenantRow } = tenant!;
      const { version: _, ...keyImage } = keyRow!;
      const older = tenantVersion - 1;
      const update: ChangeSet = {
        changes: [{ kind: "tenant", id: "initech", op: "update", row: { ...tenantRow, name: "stale" } }],
        audit: [],
      };
      await expect(publish(pgc.db, update, older, "test")).rejects.toThrow(
        'Tenant "initech" was changed on another node after this node last caught up; try again.',
      );
      expect((await pgc.db.select().from(pgSchema.tenants))[0]!.name).toBe("initech");

      // Keys listed after their tenant: the tenant's delete takes them along, which is no conflict.
      const version = await currentVersion(pgc.db);
      const removal: ChangeSet = {
        changes: [
          { kind: "tenant", id: "initech", op: "delete", row: null },
          { kind: "key", id: key.id, op: "delete", row: null },
        ],
        audit: [],
      };
      expect(await publish(pgc.db, removal, version, "test")).toBe(version + 1);
      expect(await pgc.db.select().from(pgSchema.apiKeys)).toEqual([]);

      const late: ChangeSet = {
        changes: [{ kind: "key", id: "key_late", op: "insert", row: { ...keyImage, id: "key_late" } }],
        audit: [],
      };
      await expect(publish(pgc.db, late, version, "test")).rejects.toThrow(
        'Tenant "initech" was deleted on another node.',
      );
      expect(await pgc.db.select().from(pgSchema.apiKeys)).toEqual([]);
    } finally {
      await pgc.close();
    }
  });
});
