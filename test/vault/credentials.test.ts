/**
 * The vault through the control API and the data plane: write-only credentials, injected by name
 * into upstream headers, replaced per tenant, refused when missing or still in use, and never shown.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type RecordingUpstream, startUpstream } from "../support/upstream.ts";
import { KEY_A, startVaultGateway, vaultConfig } from "./helpers.ts";

let up: RecordingUpstream;
beforeAll(() => {
  up = startUpstream();
});
afterAll(() => up.stop());

const PETSTORE = "tok-Petstore-7f3a9c";
const ACME = "tok-Acme-41b2e8";
const BEARER = '{ credential: petstore-token, format: "Bearer {value}" }';
const withKey = { env: { GATEHOUSE_MASTER_KEY: KEY_A } };

/** What the upstream received for requests to `path`, as authorization per request. */
const authorizationsAt = (path: string) =>
  up.received.filter((r) => r.target === path).map((r) => r.headers.authorization);

describe("credentials", () => {
  test("without a master key, storing one is refused with how to make a key; nothing is stored", async () => {
    const gw = await startVaultGateway(vaultConfig(up.url));
    try {
      const r = await gw.admin("PUT", "/credentials/petstore-token", { value: PETSTORE });
      expect(r.status).toBe(409);
      expect(r.json.type).toBe("urn:gatehouse:problem:master-key-missing");
      expect(r.json.detail).toContain("gatehouse new-master-key");
      expect(r.json.detail).toContain("head -c 32 /dev/urandom | base64");
      expect(r.json.detail).toContain("GATEHOUSE_MASTER_KEY");
      expect((await gw.admin("GET", "/credentials")).json.items).toEqual([]);
    } finally {
      await gw.close();
    }
  });

  test("write-only: PUT creates (201) and replaces (200); GET shows metadata and users, never the value", async () => {
    const gw = await startVaultGateway(vaultConfig(up.url), withKey);
    try {
      const created = await gw.admin("PUT", "/credentials/petstore-token", {
        value: PETSTORE,
        description: "Petstore production token",
      });
      expect(created.status).toBe(201);
      expect(created.json).toEqual({
        name: "petstore-token",
        description: "Petstore production token",
        createdAt: expect.any(String),
        updatedAt: expect.any(String),
        available: true,
        usedBy: { upstreams: [], tenants: [] },
      });
      // A replacement without a description keeps the one it had.
      const replaced = await gw.admin("PUT", "/credentials/petstore-token", { value: `${PETSTORE}-2` });
      expect(replaced.status).toBe(200);
      expect(replaced.json.description).toBe("Petstore production token");
      expect((await gw.admin("GET", "/credentials/petstore-token")).json).toEqual(replaced.json);
      expect((await gw.admin("GET", "/credentials")).json).toEqual({
        items: [replaced.json],
        nextCursor: null,
      });
      expect((await gw.admin("GET", "/credentials/nope")).status).toBe(404);

      const audit = await gw.admin("GET", "/audit?objectType=credential");
      expect(audit.json.items.map((e: { action: string; after: unknown }) => [e.action, e.after])).toEqual([
        [
          "credential.update",
          {
            name: "petstore-token",
            description: "Petstore production token",
            value: "***",
            valueChanged: true,
          },
        ],
        [
          "credential.create",
          {
            name: "petstore-token",
            description: "Petstore production token",
            value: "***",
            valueChanged: true,
          },
        ],
      ]);
      expect(gw.answers.join("\n")).not.toContain(PETSTORE);
    } finally {
      await gw.close();
    }
  });

  test("an upstream header injects the credential by name, and a new value goes with the next request", async () => {
    const gw = await startVaultGateway(vaultConfig(up.url), withKey);
    try {
      await gw.admin("PUT", "/credentials/petstore-token", { value: PETSTORE });
      gw.writeConfig(vaultConfig(up.url, { header: BEARER }));
      expect((await gw.admin("POST", "/config/reload")).status).toBe(200);

      expect((await gw.data("/inject/1", "acme-secret-0001")).status).toBe(200);
      await gw.admin("PUT", "/credentials/petstore-token", { value: `${PETSTORE}-new` });
      expect((await gw.data("/inject/2", "acme-secret-0001")).status).toBe(200);
      expect(authorizationsAt("/inject/1")).toEqual([`Bearer ${PETSTORE}`]);
      expect(authorizationsAt("/inject/2")).toEqual([`Bearer ${PETSTORE}-new`]);
      expect(up.received.find((r) => r.target === "/inject/1")?.headers["x-static"]).toBe("plain");

      const users = (await gw.admin("GET", "/credentials/petstore-token")).json.usedBy;
      expect(users).toEqual({ upstreams: [{ upstream: "petstore", header: "authorization" }], tenants: [] });
    } finally {
      await gw.close();
    }
  });

  test("a tenant's own credential goes with that tenant's requests only (from the file and from the API)", async () => {
    const initech = "tok-Initech-99d0aa";
    const gw = await startVaultGateway(vaultConfig(up.url), withKey);
    try {
      for (const [name, value] of [
        ["petstore-token", PETSTORE],
        ["acme-petstore-token", ACME],
        ["initech-petstore-token", initech],
      ]) {
        expect((await gw.admin("PUT", `/credentials/${name}`, { value })).status).toBe(201);
      }
      gw.writeConfig(
        vaultConfig(up.url, { header: BEARER }).replace(
          "  acme:\n    plan: open\n",
          "  acme:\n    plan: open\n    credentials: { petstore: acme-petstore-token }\n",
        ),
      );
      expect((await gw.admin("POST", "/config/reload")).status).toBe(200);
      const created = await gw.admin("POST", "/tenants", {
        id: "initech",
        plan: "open",
        credentials: { petstore: "initech-petstore-token" },
      });
      expect(created.status).toBe(201);
      expect(created.json.credentials).toEqual({ petstore: "initech-petstore-token" });
      const key = await gw.admin("POST", "/tenants/initech/keys", {});

      await gw.data("/per-tenant", "acme-secret-0001");
      await gw.data("/per-tenant", "globex-secret-0001");
      await gw.data("/per-tenant", key.json.secret);
      expect(authorizationsAt("/per-tenant")).toEqual([
        `Bearer ${ACME}`,
        `Bearer ${PETSTORE}`,
        `Bearer ${initech}`,
      ]);

      expect((await gw.admin("GET", "/credentials/acme-petstore-token")).json.usedBy).toEqual({
        upstreams: [],
        tenants: [{ tenant: "acme", upstream: "petstore" }],
      });
      // The export names the credential, as the file would; the value is nowhere.
      const exported = await gw.admin("GET", "/export");
      expect(exported.text).toContain("credentials:\n      petstore: initech-petstore-token");
      expect(exported.text).not.toContain(initech);
    } finally {
      await gw.close();
    }
  });

  test("a config naming a credential that is not stored is refused, located; the running config keeps serving", async () => {
    const gw = await startVaultGateway(vaultConfig(up.url), withKey);
    try {
      await gw.admin("PUT", "/credentials/petstore-token", { value: PETSTORE });
      gw.writeConfig(vaultConfig(up.url, { header: BEARER }));
      await gw.admin("POST", "/config/reload");
      const before = (await gw.admin("GET", "/config")).json.version;

      const text = vaultConfig(up.url, { header: '{ credential: petstore-tokn, format: "Bearer {value}" }' });
      gw.writeConfig(text);
      const refused = await gw.admin("POST", "/config/reload");
      expect(refused.status).toBe(422);
      const line = text.split("\n").findIndex((l) => l.includes("petstore-tokn")) + 1;
      const col = text.split("\n")[line - 1]!.indexOf("petstore-tokn") + 1;
      expect(refused.json.errors).toEqual([
        `${gw.configPath}:${line}:${col} upstreams.petstore.headers.authorization.credential: no credential named "petstore-tokn" is stored`,
      ]);
      expect((await gw.admin("GET", "/config")).json.version).toBe(before);
      await gw.data("/still-serving", "acme-secret-0001");
      expect(authorizationsAt("/still-serving")).toEqual([`Bearer ${PETSTORE}`]);
    } finally {
      await gw.close();
    }
  });

  test("delete is refused while the credential is in use, naming every user; once unused it goes", async () => {
    const gw = await startVaultGateway(vaultConfig(up.url), withKey);
    try {
      await gw.admin("PUT", "/credentials/petstore-token", { value: PETSTORE });
      gw.writeConfig(vaultConfig(up.url, { header: BEARER }));
      await gw.admin("POST", "/config/reload");
      await gw.admin("POST", "/tenants", {
        id: "initech",
        plan: "open",
        credentials: { petstore: "petstore-token" },
      });

      const refused = await gw.admin("DELETE", "/credentials/petstore-token");
      expect(refused.status).toBe(409);
      expect(refused.json.detail).toBe(
        'Credential "petstore-token" is in use by upstream "petstore" (header authorization), tenant "initech" ' +
          '(for upstream "petstore"); change those first (the config file, or PATCH /tenants/{id}), then delete it.',
      );
      expect((await gw.admin("GET", "/credentials/petstore-token")).status).toBe(200);

      await gw.admin("PATCH", "/tenants/initech", { credentials: {} });
      gw.writeConfig(vaultConfig(up.url));
      await gw.admin("POST", "/config/reload");
      expect((await gw.admin("DELETE", "/credentials/petstore-token")).status).toBe(204);
      expect((await gw.admin("GET", "/credentials/petstore-token")).status).toBe(404);
      expect((await gw.admin("DELETE", "/credentials/petstore-token")).status).toBe(404);
    } finally {
      await gw.close();
    }
  });

  test("a tenant may not name an unknown credential, nor replace one on an upstream that injects none", async () => {
    const gw = await startVaultGateway(vaultConfig(up.url), withKey);
    try {
      await gw.admin("PUT", "/credentials/petstore-token", { value: PETSTORE });
      const r1 = await gw.admin("POST", "/tenants", {
        id: "t1",
        plan: "open",
        credentials: { petstore: "petstore-token" },
      });
      expect(r1.status).toBe(400);
      expect(r1.json.detail).toContain(
        'upstream "petstore" injects no credential, so there is none to replace',
      );

      gw.writeConfig(vaultConfig(up.url, { header: BEARER }));
      await gw.admin("POST", "/config/reload");
      const r2 = await gw.admin("POST", "/tenants", {
        id: "t1",
        plan: "open",
        credentials: { petstore: "nope" },
      });
      expect(r2.status).toBe(400);
      expect(r2.json.detail).toBe(
        'credentials.petstore: no credential named "nope" is stored; store it first with PUT /credentials/nope.',
      );
      expect((await gw.admin("GET", "/tenants/t1")).status).toBe(404);
    } finally {
      await gw.close();
    }
  });

  test("a reload that takes away the credential an API tenant replaces is refused, located", async () => {
    const gw = await startVaultGateway(vaultConfig(up.url), withKey);
    try {
      await gw.admin("PUT", "/credentials/petstore-token", { value: PETSTORE });
      gw.writeConfig(vaultConfig(up.url, { header: BEARER }));
      await gw.admin("POST", "/config/reload");
      await gw.admin("POST", "/tenants", {
        id: "initech",
        plan: "open",
        credentials: { petstore: "petstore-token" },
      });

      gw.writeConfig(vaultConfig(up.url));
      const refused = await gw.admin("POST", "/config/reload");
      expect(refused.status).toBe(422);
      expect(refused.json.errors).toEqual([
        `${gw.configPath}:6:5 upstreams.petstore.headers: tenant "initech", created through the control API, has a ` +
          'credential of its own for upstream "petstore", and now upstream "petstore" injects no credential, so ' +
          "there is none to replace; keep the upstream's one credential header, or change the tenant's credentials " +
          "first (PATCH /tenants/initech)",
      ]);
    } finally {
      await gw.close();
    }
  });

  test("explain names the credentials a request carries; a request needing one that is gone gets 502", async () => {
    const gw = await startVaultGateway(vaultConfig(up.url), withKey);
    try {
      await gw.admin("PUT", "/credentials/petstore-token", { value: PETSTORE });
      gw.writeConfig(vaultConfig(up.url, { header: BEARER }));
      await gw.admin("POST", "/config/reload");
      const e = await gw.admin("POST", "/explain", { key: "acme-key", method: "GET", path: "/x" });
      expect(e.json).toMatchObject({
        outcome: "forwarded",
        route: { upstream: "petstore", credentials: ["petstore-token"] },
      });
      expect(e.text).not.toContain(PETSTORE);

      // Vanished underneath (a database edited by hand): the data plane must not send the header empty.
      gw.state.vault.forget("petstore-token");
      gw.state.rebuild();
      const r = await gw.data("/vanished", "acme-secret-0001");
      expect(r.status).toBe(502);
      expect(r.text).not.toContain("petstore-token");
      expect(authorizationsAt("/vanished")).toEqual([]);
      expect(gw.logs.filter((l) => l.includes("petstore-token")).map((l) => JSON.parse(l))).toEqual([
        {
          level: "error",
          msg: "upstream credential unavailable; answered 502",
          requestId: expect.any(String),
          upstream: "petstore",
          credential: "petstore-token",
        },
      ]);
      const explained = await gw.admin("POST", "/explain", { key: "acme-key", method: "GET", path: "/x" });
      expect(explained.json).toMatchObject({ outcome: "refused", status: 502, refusedBy: "upstream" });
    } finally {
      await gw.close();
    }
  });

  test("the value is in no answer, log line, export, audit entry, metric, spec, explain, nor any database byte", async () => {
    const dir = (await import("node:fs")).mkdtempSync(
      join((await import("node:os")).tmpdir(), "gatehouse-leak-"),
    );
    const gw = await startVaultGateway(vaultConfig(up.url), {
      ...withKey,
      dir,
      db: join(dir, "gatehouse.db"),
    });
    try {
      await gw.admin("PUT", "/credentials/petstore-token", { value: PETSTORE, description: "petstore" });
      await gw.admin("PUT", "/credentials/acme-petstore-token", { value: ACME });
      gw.writeConfig(
        vaultConfig(up.url, { header: BEARER }).replace(
          "  acme:\n    plan: open\n",
          "  acme:\n    plan: open\n    credentials: { petstore: acme-petstore-token }\n",
        ),
      );
      await gw.admin("POST", "/config/reload");
      await gw.admin("POST", "/tenants", {
        id: "initech",
        plan: "open",
        credentials: { petstore: "petstore-token" },
      });
      // Bodies that fail validation in every way a value can: never echoed.
      for (const body of [
        { value: `${PETSTORE} ` },
        { value: `${PETSTORE}\u00e9` },
        { value: PETSTORE.repeat(500) },
        { value: PETSTORE, extra: PETSTORE },
        { value: PETSTORE, description: `${PETSTORE}\n` },
        `{"value": "${PETSTORE}"`,
      ]) {
        expect((await gw.admin("PUT", "/credentials/petstore-token", body)).status).toBe(400);
      }
      expect((await gw.admin("PUT", `/credentials/${PETSTORE}!`, { value: PETSTORE })).status).toBe(400);
      expect((await gw.admin("DELETE", "/credentials/petstore-token")).status).toBe(409);
      await gw.data("/leak", "acme-secret-0001");
      await gw.data("/leak", "globex-secret-0001");
      await gw.data("/leak", "wrong-secret-0001");
      expect(authorizationsAt("/leak")).toEqual([`Bearer ${ACME}`, `Bearer ${PETSTORE}`]);
      for (const path of [
        "/credentials",
        "/credentials/petstore-token",
        "/tenants",
        "/tenants/acme",
        "/audit",
      ]) {
        expect((await gw.admin("GET", path)).status).toBe(200);
      }
      for (const path of ["/export", "/metrics", "/openapi.json", "/config"]) await gw.admin("GET", path);
      await gw.admin("POST", "/explain", { key: "acme-key", method: "GET", path: "/leak" });
      await gw.admin("POST", "/explain", { tenant: "globex", method: "GET", path: "/leak" });
      await gw.admin("POST", "/config/reload");

      const seen = [...gw.answers, ...gw.logs].join("\n");
      expect(seen).toContain("petstore-token");
      for (const value of [PETSTORE, ACME]) expect(seen).not.toContain(value);
      // What SQLite wrote: the database file, its WAL and shared memory, read as raw bytes.
      const files = readdirSync(dir).filter((f) => f.startsWith("gatehouse.db"));
      expect(files).toContain("gatehouse.db-wal");
      for (const f of files) {
        const bytes = readFileSync(join(dir, f));
        for (const value of [PETSTORE, ACME]) {
          expect(bytes.includes(Buffer.from(value))).toBe(false);
          expect(bytes.includes(Buffer.from(value, "utf16le"))).toBe(false);
        }
      }
    } finally {
      await gw.close();
    }
    for (const f of readdirSync(dir).filter((f) => f.startsWith("gatehouse.db"))) {
      expect(readFileSync(join(dir, f)).includes(Buffer.from(PETSTORE))).toBe(false);
    }
    (await import("node:fs")).rmSync(dir, { recursive: true, force: true });
  });
});
