/**
 * `gatehouse diff`: what a reload would change in the database the config names, read-only, without
 * a secret in its output; exit 0 (no changes), 1 (changes) or 3 (the reload would be refused).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startTestGateway } from "../support/gateway.ts";
import { gatehouseCommand } from "../support/process.ts";

const SECRETS = [
  "diff-secret-acme-0001",
  "diff-secret-acme-0002",
  "diff-secret-hooli-001",
  "upstream-token-1",
  "upstream-token-2",
];

const config = (o: {
  acmeSecret: string;
  upstreamToken: string;
  freeLimit: number;
  withGlobex: boolean;
  withHooli: boolean;
  withFree?: boolean;
}) => `version: 1
database: ./gatehouse.db
upstreams:
  echo: { mock: echo }
  api: { url: "http://127.0.0.1:9", headers: { authorization: "Bearer ${o.upstreamToken}" } }
plans:
${o.withFree === false ? "" : `  free: { limits: [{ limit: ${o.freeLimit}, window: 1s }], rules: [{ allow: "GET /v1/**" }] }\n`}  pro: { rules: [{ allow: "* /v1/**" }] }
routes:
  - { match: "* /v1/**", upstream: echo }
  - { match: "GET /v1/api/**", upstream: api }
tenants:
  acme:
    plan: pro
    keys: [{ id: acme-dev, secret: ${o.acmeSecret} }]
${o.withGlobex ? "  globex: { plan: pro, keys: [{ id: globex-dev, secret: diff-secret-globex-01 }] }\n" : ""}${o.withHooli ? "  hooli: { plan: pro, keys: [{ id: hooli-dev, secret: diff-secret-hooli-001 }] }\n" : ""}`;

const first = {
  acmeSecret: SECRETS[0]!,
  upstreamToken: SECRETS[3]!,
  freeLimit: 10,
  withGlobex: true,
  withHooli: false,
};
let dir: string;
let configPath: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "gatehouse-diff-"));
  configPath = join(dir, "gateway.yaml");
  // A database synced from the first config, with a tenant and key made through the control API.
  // Test mode writes on this thread only, so nothing is still writing to the file once it stopped.
  const gw = startTestGateway(config(first), {
    db: join(dir, "gatehouse.db"),
    testClockStart: Date.UTC(2030, 0, 1),
  });
  const post = (path: string, body: unknown) =>
    fetch(`${gw.adminUrl}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  expect((await post("/tenants", { id: "initech", plan: "free" })).status).toBe(201);
  expect((await post("/tenants/initech/keys", {})).status).toBe(201);
  await gw.close();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function diff(yaml: string, ...args: string[]) {
  writeFileSync(configPath, yaml);
  const files = ["gatehouse.db", "gatehouse.db-wal"].map((f) => join(dir, f));
  const before = files.map((f) => (existsSync(f) ? readFileSync(f) : null));
  const r = Bun.spawnSync([...gatehouseCommand(), "diff", ...args], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? "" },
  });
  // Read-only: not one byte of the database changed.
  expect(files.map((f) => (existsSync(f) ? readFileSync(f) : null))).toEqual(before);
  const out = r.stdout.toString();
  const err = r.stderr.toString();
  for (const s of SECRETS) {
    expect(out + err).not.toContain(s);
    expect(out + err).not.toContain(new Bun.CryptoHasher("sha256").update(s).digest("hex"));
  }
  return { code: r.exitCode, out, err };
}

test("no changes: exit 0", () => {
  expect(diff(config(first))).toEqual({
    code: 0,
    out: "gateway.yaml → ./gatehouse.db: no changes\n",
    err: "",
  });
});

test("changes: one line per object, names and fields only, exit 1", () => {
  const r = diff(
    config({
      ...first,
      acmeSecret: SECRETS[1]!,
      upstreamToken: SECRETS[4]!,
      freeLimit: 20,
      withGlobex: false,
      withHooli: true,
    }),
  );
  expect(r.err).toBe("");
  expect(r.out).toBe(
    [
      "gateway.yaml → ./gatehouse.db:",
      "~ upstream api",
      "~ plan free",
      "+ tenant hooli",
      "- tenant globex",
      "+ key hooli-dev (tenant hooli)",
      "~ key acme-dev (tenant acme): secret",
      "- key globex-dev",
      "7 changes: 2 to add, 3 to change, 2 to remove",
      "",
    ].join("\n"),
  );
  expect(r.code).toBe(1);
});

test("a reload the database would refuse: its located errors, exit 3", () => {
  const r = diff(config({ ...first, withFree: false }));
  expect(r.out).toBe("");
  expect(r.err).toMatch(
    /^a reload of gateway.yaml would be refused, and change nothing:\ngateway.yaml:\d+:\d+ plans: tenant "initech", created through the control API, uses plan "free", which this file no longer declares;/,
  );
  expect(r.code).toBe(3);
});

test("--db, GATEHOUSE_DB and database: choose the database, in that order", () => {
  const r = Bun.spawnSync([...gatehouseCommand(), "diff", "--db", "other.db"], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? "", GATEHOUSE_DB: "env.db" },
  });
  expect(r.stdout.toString()).toStartWith(
    "gateway.yaml → other.db (no database there yet: compared as empty):\n",
  );
  const e = Bun.spawnSync([...gatehouseCommand(), "diff"], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? "", GATEHOUSE_DB: "env.db" },
  });
  expect(e.stdout.toString()).toStartWith(
    "gateway.yaml → env.db (no database there yet: compared as empty):\n",
  );
  // Compared as empty, and still not created.
  expect(existsSync(join(dir, "env.db"))).toBe(false);
});
