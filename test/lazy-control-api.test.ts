/**
 * The data plane starts without the control API's libraries: Elysia, its OpenAPI plugin and
 * prom-client are loaded on the first control-API request. Checked in a process of its own, since
 * this one loads them for other tests.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";

const root = join(import.meta.dir, "..");

test("serving loads Elysia and prom-client only when the control API is first called", () => {
  const script = `
    import { startGateway } from ${JSON.stringify(join(root, "src/app.ts"))};
    const heavy = () => Object.keys(require.cache).filter((k) => /node_modules\\/(elysia|@elysiajs|prom-client)\\//.test(k)).length;
    const g = startGateway({ configPath: ${JSON.stringify(join(root, "gateway.yaml"))}, db: ":memory:", listen: "127.0.0.1:0", admin: "127.0.0.1:0", log: () => {} });
    const before = heavy();
    const data = (await fetch(g.dataUrl + "/v1/items", { headers: { "x-api-key": "gh_demo_acme_0001" } })).status;
    const afterData = heavy();
    const metrics = (await fetch(g.adminUrl + "/metrics")).status;
    console.log(JSON.stringify({ before, data, afterData, metrics, afterAdmin: heavy() }));
    await g.stop();
  `;
  const r = Bun.spawnSync([process.execPath, "-e", script], {
    cwd: root,
    env: { PATH: process.env.PATH ?? "" },
  });
  expect(r.exitCode).toBe(0);
  const seen = JSON.parse(r.stdout.toString().trim().split("\n").at(-1)!);
  expect(seen).toMatchObject({ before: 0, data: 200, afterData: 0, metrics: 200 });
  // The check can see them: once the control API has answered, they are loaded.
  expect(seen.afterAdmin).toBeGreaterThan(0);
});
