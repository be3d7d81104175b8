/**
 * cluster.postgres with server.threads: 2: a key made through the node's control API is served by
 * both its threads as soon as it is answered (the change went through PostgreSQL first), and every
 * usage row the threads answered reaches PostgreSQL through the one writer thread.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startGatewayUnlocked } from "../../src/app.ts";
import { startPostgres, type TestPostgres } from "../support/postgres.ts";
import { clusterYaml, MASTER_KEY, TOKEN } from "./pg-support.ts";

let pg: TestPostgres;
beforeAll(async () => {
  pg = await startPostgres();
}, 30_000);
afterAll(async () => {
  await pg?.close();
});

test("a node on two threads: a key made through PostgreSQL serves on both at once; every row is shipped", async () => {
  const url = await pg.createDatabase("threads");
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-pg-threads-"));
  try {
    const configPath = join(dir, "gateway.yaml");
    writeFileSync(
      configPath,
      clusterYaml(url).replace(
        `server: { adminToken: ${TOKEN} }`,
        `server: { adminToken: ${TOKEN}, threads: 2 }`,
      ),
    );
    const gw = await startGatewayUnlocked({
      configPath,
      db: join(dir, "gatehouse.db"),
      listen: "127.0.0.1:0",
      admin: "127.0.0.1:0",
      env: { GATEHOUSE_MASTER_KEY: MASTER_KEY },
      watchConfig: false,
      log: () => {},
    });
    let stopped = false;
    try {
      const made = await fetch(`${gw.adminUrl}/tenants/acme/keys`, {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
        body: "{}",
      });
      expect(made.status).toBe(201);
      const { secret } = (await made.json()) as { secret: string };
      const statuses = await Promise.all(
        Array.from({ length: 16 }, async () => {
          const r = await fetch(`${gw.dataUrl}/v1/x`, {
            headers: { "x-api-key": secret, connection: "close" },
          });
          await r.arrayBuffer();
          return r.status;
        }),
      );
      expect(statuses).toEqual(Array(16).fill(200));
      await gw.stop();
      stopped = true;
      const rows = await pg.query<{ n: string }>("select count(*) as n from usage", "threads");
      expect(rows.map((r) => Number(r.n))).toEqual([16]);
    } finally {
      if (!stopped) await gw.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
