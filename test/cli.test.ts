import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { basicConfig } from "./support/gateway.ts";
import { gatehouseCommand, startProcess } from "./support/process.ts";
import { type RecordingUpstream, startUpstream } from "./support/upstream.ts";

const root = join(import.meta.dir, "..");
let dir: string;
let up: RecordingUpstream;
let config: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "gatehouse-cli-"));
  up = startUpstream();
  config = join(dir, "gateway.yaml");
  writeFileSync(config, basicConfig(up.url));
});
afterAll(async () => {
  await up.stop();
  rmSync(dir, { recursive: true, force: true });
});

const run = (...args: string[]) =>
  Bun.spawnSync([...gatehouseCommand(), ...args], { cwd: root, env: { PATH: process.env.PATH ?? "" } });
const serveArgs = (listen = "127.0.0.1:0") => [
  "serve",
  "--config",
  config,
  "--db",
  ":memory:",
  "--listen",
  listen,
  "--admin",
  "127.0.0.1:0",
];

describe("commands", () => {
  test("version", () => {
    const r = run("version");
    expect(r.exitCode).toBe(0);
    expect(r.stdout.toString()).toMatch(/^gatehouse \d+\.\d+\.\d+ \(bun [\d.]+\)\n$/);
  });

  test("validate: exit 0 on the shipped config", () => {
    const r = run("validate");
    expect(r.stdout.toString()).toBe("gateway.yaml: ok (2 tenants, 2 routes)\n");
    expect(r.exitCode).toBe(0);
  });

  test("validate: exit 1 with every located error", () => {
    const r = run("validate", "--config", "fixtures/invalid/unknown-plan.yaml");
    expect(r.exitCode).toBe(1);
    expect(r.stderr.toString()).toBe(
      'fixtures/invalid/unknown-plan.yaml:10:17 tenants.acme.plan: no plan named "fre"\n  hint: did you mean "free"?\n',
    );
  });

  test("serve: a config error stops start-up with the located error", () => {
    const r = run("serve", "--config", "fixtures/invalid/bad-duration.yaml", "--db", ":memory:");
    expect(r.exitCode).toBe(1);
    expect(r.stderr.toString()).toStartWith(
      "fixtures/invalid/bad-duration.yaml:6:35 plans.free.limits[0].window:",
    );
  });

  test("hash-key prints the form gateway.yaml accepts", () => {
    const r = run("hash-key", "gh_demo_globex_0001");
    expect(r.stdout.toString()).toBe(
      "sha256:e7f85d0d9b103761f69d68698794381672c1765a2b5bd35761f608d99c41caf1\n",
    );
  });

  test("an unknown command or flag is a usage error", () => {
    expect(run("frobnicate").exitCode).toBe(2);
    expect(run("serve", "--nope").exitCode).toBe(2);
  });
});

describe("lifecycle", () => {
  test("SIGTERM lets in-flight requests finish, then exits 0", async () => {
    const { promise: arrived, resolve } = Promise.withResolvers<void>();
    const { promise: release, resolve: letGo } = Promise.withResolvers<void>();
    up.on("/v1/slow", async () => {
      resolve();
      await release;
      return new Response("finished");
    });
    const gh = await startProcess(gatehouseCommand(), serveArgs());
    const inflight = fetch(`${gh.dataUrl}/v1/slow`, { headers: { "x-api-key": "acme-secret-0001" } });
    await arrived;
    gh.proc.kill("SIGTERM");
    await gh.waitFor('"msg":"draining"');
    // The listener closes at once: new connections are refused while the old request drains.
    await expect(
      fetch(`${gh.dataUrl}/v1/items`, { headers: { "x-api-key": "acme-secret-0001" } }),
    ).rejects.toThrow();
    letGo();
    const res = await inflight;
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("finished");
    expect(await gh.proc.exited).toBe(0);
    expect(gh.stderr()).toContain('"msg":"stopped"');
  });

  test("SIGINT exits 0 too", async () => {
    const gh = await startProcess(gatehouseCommand(), serveArgs());
    gh.proc.kill("SIGINT");
    expect(await gh.proc.exited).toBe(0);
  });

  test("a second instance on the same port fails with a clear message instead of sharing it", async () => {
    const first = await startProcess(gatehouseCommand(), serveArgs());
    try {
      const port = new URL(first.dataUrl).port;
      const second = Bun.spawnSync([...gatehouseCommand(), ...serveArgs(`127.0.0.1:${port}`)], {
        env: { PATH: process.env.PATH ?? "" },
      });
      expect(second.exitCode).toBe(1);
      expect(second.stderr.toString()).toContain("already in use");
      // The first instance still answers every request.
      const res = await fetch(`${first.dataUrl}/v1/items`, { headers: { "x-api-key": "acme-secret-0001" } });
      expect(res.status).toBe(200);
    } finally {
      first.proc.kill("SIGTERM");
      await first.proc.exited;
    }
  });
});
