/**
 * The serve process's stderr: the start-up line names the config, the database and what it holds;
 * the access log goes there only when asked; the log level silences lines below it, but never the
 * start-up line.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gatehouseCommand, startProcess } from "../support/process.ts";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "gatehouse-logs-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const config = (log: string) => `version: 1
${log}
upstreams:
  echo: { mock: echo }
  spare: { mock: echo }
plans:
  basic: { rules: [{ allow: "GET /v1/**" }] }
routes:
  - { match: "GET /v1/**", upstream: echo }
  - { match: "GET /v2/**", upstream: echo }
  - { match: "GET /v3/**", upstream: spare }
tenants:
  acme:
    plan: basic
    keys: [{ id: k1, secret: acme-secret-0001 }, { id: k2, secret: acme-secret-0002 }]
  globex:
    plan: basic
    keys: [{ id: k3, secret: globex-secret-0001 }]
`;

/** Starts serve, sends one request, stops it with SIGTERM; returns its stderr lines and the request id. */
async function serveOnce(name: string, log: string) {
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, config(log));
  const db = join(dir, `${name}.db`);
  const p = await startProcess(gatehouseCommand(), [
    "serve",
    "--config",
    path,
    "--db",
    db,
    "--listen",
    "127.0.0.1:0",
    "--admin",
    "127.0.0.1:0",
  ]);
  const res = await fetch(`${p.dataUrl}/v1/items?api_key=acme-secret-0001`, {
    headers: { "x-api-key": "acme-secret-0001" },
  });
  await res.text();
  p.proc.kill("SIGTERM");
  expect(await p.proc.exited).toBe(0);
  await p.stderrClosed;
  const lines = p
    .stderr()
    .trimEnd()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { lines, path, db, requestId: res.headers.get("x-request-id")! };
}

describe("serve's stderr", () => {
  test("by default: the start-up line with the config, the database and counts; info lines; no access log", async () => {
    const { lines, path, db, requestId } = await serveOnce("plain", "");
    const startup = lines.find((l) => l.msg === "gatehouse listening")!;
    expect(startup).toMatchObject({
      level: "info",
      config: path,
      database: db,
      tenants: 2,
      keys: 3,
      routes: 3,
      upstreams: 2,
    });
    expect(startup.proxy).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(lines.map((l) => l.msg)).toContain("draining");
    expect(lines.map((l) => l.msg)).toContain("stopped");
    expect(JSON.stringify(lines)).not.toContain(requestId);
  });

  test("log: { access: stderr, level: warn }: one access line per request, no info lines but the start-up one", async () => {
    const { lines, requestId } = await serveOnce("access", "log: { access: stderr, level: warn }");
    const access = lines.filter((l) => "request_id" in l);
    expect(access).toHaveLength(1);
    expect(access[0]).toMatchObject({ request_id: requestId, tenant: "acme", key_id: "k1", status: 200 });
    expect(JSON.stringify(lines)).not.toContain("acme-secret-0001");
    expect(lines.filter((l) => l.level === "info").map((l) => l.msg)).toEqual(["gatehouse listening"]);
  });
});
