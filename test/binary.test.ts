/**
 * The product ships as one executable. Build it with the package's own build command, copy it alone
 * with a config into an empty directory, and proxy a request end to end. The directory also holds a
 * .env and a bunfig.toml, which a production binary must ignore.
 */
import { Database } from "bun:sqlite";
import { afterAll, beforeAll, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startProcess } from "./support/process.ts";

const root = join(import.meta.dir, "..");
let work: string;
let binary: string;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), "gatehouse-bin-"));
  binary = join(work, "build", "gatehouse");
  const script = (
    JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { scripts: { build: string } }
  ).scripts.build;
  const args = script.replace("dist/gatehouse", binary).split(" ");
  expect(args[0]).toBe("bun");
  const r = Bun.spawnSync([process.execPath, ...args.slice(1)], { cwd: root });
  if (r.exitCode !== 0) throw new Error(`build failed:\n${r.stderr}`);
}, 120_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

test("the built binary serves gateway.yaml from an empty directory", async () => {
  const run = join(work, "run");
  Bun.spawnSync(["mkdir", "-p", run]);
  copyFileSync(binary, join(run, "gatehouse"));
  copyFileSync(join(root, "gateway.yaml"), join(run, "gateway.yaml"));
  writeFileSync(join(run, ".env"), "ACME_KEY=key-from-dotenv-file\n");
  writeFileSync(
    join(run, "preload.ts"),
    `require("fs").writeFileSync(${JSON.stringify(join(run, "bunfig-was-read"))}, "1");\n`,
  );
  writeFileSync(join(run, "bunfig.toml"), 'preload = ["./preload.ts"]\n');

  const gh = await startProcess(
    [join(run, "gatehouse")],
    ["serve", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"],
    { cwd: run },
  );
  try {
    const res = await fetch(`${gh.dataUrl}/v1/items?page=1`, {
      headers: { "x-api-key": "gh_demo_acme_0001" },
    });
    expect(res.status).toBe(200);
    const echo = (await res.json()) as {
      upstream: string;
      path: string;
      query: string;
      headers: Record<string, string>;
    };
    expect(echo).toMatchObject({ upstream: "sandbox-eu", path: "/v1/items", query: "page=1" });
    expect(echo.headers["x-gatehouse-tenant"]).toBe("acme");

    const refused = await fetch(`${gh.dataUrl}/v1/admin/users`, {
      headers: { "x-api-key": "gh_demo_acme_0001" },
    });
    expect(refused.status).toBe(403);
    expect((await fetch(`${gh.adminUrl}/healthz`)).status).toBe(200);
    // Code loaded on demand (the control API, its docs, the dashboard) and the files embedded with it
    // are found inside the binary.
    for (const [path, type] of [
      ["/openapi.json", "application/json"],
      ["/docs", "text/html"],
      ["/docs/scalar.js", "javascript"],
      ["/ui", "text/html"],
      ["/ui/assets/dashboard.js", "javascript"],
    ] as const) {
      const r = await fetch(`${gh.adminUrl}${path}`);
      expect(`${path} ${r.status} ${r.headers.get("content-type")?.includes(type)}`).toBe(`${path} 200 true`);
      expect((await r.arrayBuffer()).byteLength).toBeGreaterThan(100);
    }

    // The database was created and migrated in the empty directory.
    expect(existsSync(join(run, "gatehouse.db"))).toBe(true);
    // Neither .env (which would have changed the demo key) nor bunfig.toml was read.
    expect(existsSync(join(run, "bunfig-was-read"))).toBe(false);
  } finally {
    gh.proc.kill("SIGTERM");
    expect(await gh.proc.exited).toBe(0);
  }
  // The writer thread runs from inside the binary too: a graceful stop committed what traffic caused.
  const db = new Database(join(run, "gatehouse.db"), { readonly: true });
  try {
    const rows = db.query("SELECT path, status FROM usage ORDER BY ts").all();
    expect(rows).toEqual([
      { path: "/v1/items", status: 200 },
      { path: "/v1/admin/users", status: 403 },
    ]);
    const key = db.query("SELECT last_used_at FROM api_keys WHERE tenant_id = 'acme'").get() as {
      last_used_at: number | null;
    };
    expect(key.last_used_at).toBeGreaterThan(0);
  } finally {
    db.close();
  }
});

test("the binary runs data-plane threads from inside itself (server.threads: 2)", async () => {
  const run = join(work, "threads");
  Bun.spawnSync(["mkdir", "-p", run]);
  const config = readFileSync(join(root, "gateway.yaml"), "utf8").replace(
    "server:\n",
    "server:\n  threads: 2\n",
  );
  expect(config).toContain("threads: 2");
  writeFileSync(join(run, "gateway.yaml"), config);
  const gh = await startProcess([binary], ["serve", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"], {
    cwd: run,
  });
  try {
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${gh.dataUrl}/v1/items`, { headers: { "x-api-key": "gh_demo_acme_0001" } });
      expect(res.status).toBe(200);
      await res.arrayBuffer();
    }
    // Requests were served by the threads, each counting its own.
    const metrics = await (await fetch(`${gh.adminUrl}/metrics`)).text();
    const counts = [...metrics.matchAll(/^gatehouse_thread_requests_total\{thread="(\d)"\} (\d+)$/gm)];
    expect(counts.map((m) => m[1])).toEqual(["1", "2"]);
    expect(counts.reduce((sum, m) => sum + Number(m[2]), 0)).toBe(20);
  } finally {
    gh.proc.kill("SIGTERM");
    expect(await gh.proc.exited).toBe(0);
  }
  const db = new Database(join(run, "gatehouse.db"), { readonly: true });
  try {
    expect(db.query("SELECT count(*) AS n FROM usage").get()).toEqual({ n: 20 });
  } finally {
    db.close();
  }
});

test("the binary's version and validate commands work without the source tree", () => {
  const r = Bun.spawnSync([binary, "version"], { cwd: work });
  expect(r.exitCode).toBe(0);
  expect(r.stdout.toString()).toStartWith("gatehouse ");
});
