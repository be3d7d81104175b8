import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { createAdminApp } from "../../src/admin/app.ts";
import { setClientIp } from "../../src/admin/client-ip.ts";
import { exportApiObjects, runExport } from "../../src/cli/export.ts";
import { loadConfigFile, parseConfig } from "../../src/config/load.ts";
import { openDb } from "../../src/db/open.ts";
import { GatewayState } from "../../src/gateway/state.ts";
import { hashKey } from "../../src/lib/key-hash.ts";
import { silentLog } from "../../src/lib/log.ts";
import { type AdminFixture, adminFixture, BASE_YAML, expectProblem, TOKEN } from "./helpers.ts";

let f: AdminFixture;
beforeEach(() => {
  f = adminFixture();
});
afterEach(() => f.close());

describe("GET /config and POST /config/reload", () => {
  test("reports the version, file, hash and load time in force", async () => {
    const r = await f.call("GET", "/config");
    expect(r.json).toEqual({
      version: f.state.snapshot.version,
      file: f.configPath,
      hash: f.state.config.hash,
      loadedAt: "2026-01-01T00:00:00.000Z",
      lastReloadError: null,
    });
  });

  test("a bad config is refused with located errors, the running one keeps serving, and GET /config says why", async () => {
    const version = f.state.snapshot.version;
    f.clock.advance(60_000);
    f.writeConfig(BASE_YAML.replace("plan: premium", "plan: platinum").replace("window: 1s", "window: soon"));
    const r = await f.call("POST", "/config/reload");
    const p = expectProblem(r, 422);
    expect(p.detail).toContain(`version ${version} keeps serving`);
    expect(p.errors!.length).toBeGreaterThan(0);
    for (const e of p.errors!) expect(e).toMatch(/gateway\.yaml:\d+:\d+ /);
    expect(p.errors!.join("\n")).toContain("window");

    expect(f.state.snapshot.version).toBe(version);
    expect(await f.data("gh_demo_acme_0001")).toBe(200);

    const info = (await f.call("GET", "/config")).json;
    expect(info.lastReloadError.at).toBe("2026-01-01T00:01:00.000Z");
    expect(info.lastReloadError.errors).toEqual(p.errors);
    expect(info.loadedAt).toBe("2026-01-01T00:00:00.000Z");

    f.clock.advance(60_000);
    f.writeConfig(BASE_YAML.replace("Acme Corp", "Acme Inc"));
    const ok = await f.call("POST", "/config/reload");
    expect(ok.status).toBe(200);
    expect(ok.json).toEqual({ version: version + 1, changed: true });
    const after = (await f.call("GET", "/config")).json;
    expect(after.lastReloadError).toBeNull();
    expect(after.loadedAt).toBe("2026-01-01T00:02:00.000Z");
    expect((await f.call("GET", "/tenants/acme")).json.name).toBe("Acme Inc");
  });

  test("a reload that would strand an API tenant (its plan removed) is refused and changes nothing", async () => {
    await f.call("POST", "/tenants", { body: { id: "newco", plan: "free" } });
    const secret = (await f.call("POST", "/tenants/newco/keys")).json.secret;
    f.writeConfig(BASE_YAML.replace(/ {2}free:\n(.*\n){3}/, "").replace("plan: free", "plan: premium"));
    const p = expectProblem(await f.call("POST", "/config/reload"), 422);
    expect(p.errors!.join(" ")).toContain("newco");
    expect(await f.data(secret)).toBe(200);
  });

  test("reload errors name the variable, never its value: not in the answer, GET /config or the audit log", async () => {
    const secret = "hunter2-c0ffee";
    const env = { UPSTREAM_URL: `http://admin:${secret}@[bad` };
    const database = openDb(":memory:");
    try {
      const state = new GatewayState(f.configPath, database, f.clock, env, loadConfigFile(f.configPath, env));
      const app = createAdminApp({ token: TOKEN, state, database, clock: f.clock, log: silentLog });
      const call = async (method: string, path: string) => {
        const req = new Request(`http://admin${path}`, {
          method,
          headers: { authorization: `Bearer ${TOKEN}` },
        });
        setClientIp(req, "127.0.0.1");
        const res = await app.handle(req);
        return { status: res.status, text: await res.text() };
      };
      f.writeConfig(
        BASE_YAML.replace("sandbox-eu: { mock: echo }", 'sandbox-eu: { url: "${UPSTREAM_URL}" }'),
      );
      const reload = await call("POST", "/config/reload");
      expect(reload.status).toBe(422);
      expect(reload.text).toContain("the value of ${UPSTREAM_URL} is not a valid URL");
      const info = await call("GET", "/config");
      expect(JSON.parse(info.text).lastReloadError.errors).toEqual(JSON.parse(reload.text).errors);
      const audit = await call("GET", "/audit?objectType=config");
      expect(audit.text).toContain("config.reload_failed");
      for (const text of [reload.text, info.text, audit.text]) expect(text).not.toContain(secret);
    } finally {
      database.close();
    }
  });

  test("reloads through the API are audited", async () => {
    await f.call("POST", "/config/reload", { ip: "192.0.2.44" });
    const entry = (await f.call("GET", "/audit?objectType=config&limit=1")).json.items[0];
    expect(entry).toEqual(expect.objectContaining({ action: "config.reload", actor: "admin@192.0.2.44" }));
  });
});

describe("persistence", () => {
  test("tenants and keys made through the API survive a restart on the same database file", async () => {
    const dbPath = join(f.dir, "gatehouse.db");
    const boot = () => {
      const database = openDb(dbPath);
      const state = new GatewayState(f.configPath, database, f.clock, {}, loadConfigFile(f.configPath, {}));
      const app = createAdminApp({ token: TOKEN, state, database, clock: f.clock, log: silentLog });
      const call = async (method: string, path: string, body?: unknown) => {
        const req = new Request(`http://admin${path}`, {
          method,
          headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        setClientIp(req, "127.0.0.1");
        const res = await app.handle(req);
        // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON answers
        return { status: res.status, json: (await res.json()) as any };
      };
      return { database, state, call };
    };
    const first = boot();
    expect((await first.call("POST", "/tenants", { id: "newco", plan: "free" })).status).toBe(201);
    const secret = (await first.call("POST", "/tenants/newco/keys", { id: "newco-key" })).json
      .secret as string;
    first.database.close();

    const second = boot();
    try {
      expect((await second.call("GET", "/tenants/newco")).json.source).toBe("api");
      expect(second.state.snapshot.keysByHash.get(hashKey(secret))?.id).toBe("newco-key");
    } finally {
      second.database.close();
    }
  });
});

describe("export", () => {
  async function populate() {
    await f.call("POST", "/tenants", {
      body: {
        id: "newco",
        plan: "free",
        name: "New Co",
        metadata: { region: "us" },
        upstreams: { sandbox: "sandbox-eu" },
        limits: [{ limit: 5, window: "1s" }],
        quota: { limit: 100, period: "month", anchor: 15 },
      },
    });
    const a = (
      await f.call("POST", "/tenants/newco/keys", {
        body: { id: "newco-a", expiresAt: "2026-06-01T00:00:00Z" },
      })
    ).json;
    await f.call("POST", "/tenants/newco/keys", { body: { id: "newco-b", disabled: true } });
    const ci = (await f.call("POST", "/tenants/acme/keys", { body: { id: "acme-ci" } })).json;
    return { a: a.secret as string, ci: ci.secret as string };
  }

  test("writes API-made tenants and keys as gateway.yaml, with hashes and no secrets", async () => {
    const secrets = await populate();
    const r = await f.call("GET", "/export");
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toContain("yaml");
    expect(r.text).not.toContain(secrets.a);
    expect(r.text).not.toContain(secrets.ci);
    expect(r.text).toContain(hashKey(secrets.a));
    expect(r.text).toContain("declared in gateway.yaml:19");
    const doc = parse(r.text);
    expect(Object.keys(doc.tenants).sort()).toEqual(["acme", "newco"]);
    expect(doc.tenants.acme).toEqual({ keys: [{ id: "acme-ci", hash: hashKey(secrets.ci) }] });
    expect(doc.tenants.newco.keys.map((k: { id: string }) => k.id)).toEqual(["newco-a", "newco-b"]);
    expect(r.text).toBe(exportApiObjects(f.database.db, new Date(f.clock.now())));
  });

  test("round-trips: merged into the file, the config validates and the same keys work from it", async () => {
    const secrets = await populate();
    const exported = parse((await f.call("GET", "/export")).text);
    const original = parse(BASE_YAML);
    for (const [id, t] of Object.entries<Record<string, unknown>>(exported.tenants)) {
      if (original.tenants[id]) original.tenants[id].keys = [...original.tenants[id].keys, ...(t.keys as [])];
      else original.tenants[id] = t;
    }
    const merged = parseConfig(JSON.stringify(original), "gateway.yaml", {});
    expect(merged.config.tenants!.newco!.quota).toEqual({ limit: 100, period: "month", anchor: 15 });

    // Moving them into the file: after a reload the same secrets work, now owned by the file.
    f.writeConfig(JSON.stringify(original));
    expect((await f.call("POST", "/config/reload")).status).toBe(200);
    expect((await f.call("GET", "/tenants/newco")).json.source).toBe("file");
    expect((await f.call("GET", "/keys/acme-ci")).json.source).toBe("file");
    expect(await f.data(secrets.a)).toBe(200);
    expect(await f.data(secrets.ci)).toBe(200);
    expect((await f.call("GET", "/keys/newco-b")).json.disabled).toBe(true);
    expect(exportApiObjects(f.database.db)).not.toContain("newco");
  });

  test("text from the API is escaped, so the file reads it literally and not from the environment", async () => {
    const reference = "${GATEHOUSE_ADMIN_TOKEN}";
    const created = await f.call("POST", "/tenants", {
      body: {
        id: "evil",
        plan: "free",
        name: `Evil ${reference}`,
        metadata: { note: `$${reference} and ${reference}` },
      },
    });
    expect(created.status).toBe(201);
    const exported = (await f.call("GET", "/export")).text;
    // The export as the README suggests using it: pasted as the file's tenants.
    const file = BASE_YAML.slice(0, BASE_YAML.indexOf("tenants:")) + exported;
    const loaded = parseConfig(file, "gateway.yaml", { GATEHOUSE_ADMIN_TOKEN: TOKEN });
    expect(loaded.config.tenants!.evil!.name).toBe(`Evil ${reference}`);
    expect(loaded.config.tenants!.evil!.metadata).toEqual({ note: `$${reference} and ${reference}` });
    expect(JSON.stringify(loaded.config.tenants)).not.toContain(TOKEN);
  });

  test("the CLI exports from a database file", async () => {
    const dbPath = join(f.dir, "export.db");
    const database = openDb(dbPath);
    const state = new GatewayState(f.configPath, database, f.clock, {}, loadConfigFile(f.configPath, {}));
    const app = createAdminApp({ token: TOKEN, state, database, clock: f.clock, log: silentLog });
    const req = new Request("http://admin/tenants", {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ id: "cli-co", plan: "premium" }),
    });
    expect((await app.handle(req)).status).toBe(201);
    database.close();
    const yaml = runExport(f.configPath, dbPath);
    expect(parse(yaml).tenants["cli-co"]).toEqual({ name: "cli-co", plan: "premium" });
    expect(() => runExport(f.configPath, join(f.dir, "missing.db"))).toThrow(/no database/);
    expect(readFileSync(f.configPath, "utf8")).toBe(BASE_YAML);
  });
});
