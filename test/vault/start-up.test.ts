/**
 * The vault across restarts, on a database file: the right master key serves the stored values; a
 * wrong or missing one stops start-up loudly with the file untouched; rotate-master-key moves every
 * credential to a new key; a ciphertext moved to another name fails to decrypt instead of serving.
 */

import { Database } from "bun:sqlite";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StartupError, startGateway } from "../../src/app.ts";
import { openDb } from "../../src/db/open.ts";
import { ManualClock } from "../../src/lib/clock.ts";
import { DecryptError, decodeMasterKey, importMasterKey, open } from "../../src/vault/crypto.ts";
import { findMasterKey } from "../../src/vault/master-key.ts";
import { rotateMasterKey } from "../../src/vault/rotate.ts";
import { gatehouseCommand } from "../support/process.ts";
import { type RecordingUpstream, startUpstream } from "../support/upstream.ts";
import { KEY_A, KEY_B, startVaultGateway, vaultConfig } from "./helpers.ts";

const PETSTORE = "tok-Petstore-5c8e21";
const ACME = "tok-Acme-0b7d44";
const root = join(import.meta.dir, "../..");

let up: RecordingUpstream;
let dir: string;
let config: string;
const db = () => join(dir, "gatehouse.db");

beforeAll(() => {
  up = startUpstream();
  config = vaultConfig(up.url, {
    header: '{ credential: petstore-token, format: "Bearer {value}" }',
  }).replace(
    "  acme:\n    plan: open\n",
    "  acme:\n    plan: open\n    credentials: { petstore: acme-petstore-token }\n",
  );
});
afterAll(() => up.stop());

/** A database holding two credentials under KEY_A, used by the config above. */
async function storeCredentials() {
  dir = mkdtempSync(join(tmpdir(), "gatehouse-vault-start-"));
  const gw = await startVaultGateway(vaultConfig(up.url), {
    dir,
    db: db(),
    env: { GATEHOUSE_MASTER_KEY: KEY_A },
    testMode: true,
  });
  await gw.admin("PUT", "/credentials/petstore-token", { value: PETSTORE });
  await gw.admin("PUT", "/credentials/acme-petstore-token", { value: ACME });
  await gw.close();
  writeFileSync(join(dir, "gateway.yaml"), config);
}

// Test mode keeps every write on this thread: a writer thread's connection closes some time after
// stop() resolves, and would change the file under the byte comparisons below.
const startAgain = (env: Record<string, string>) =>
  startVaultGateway(config, { dir, db: db(), env, testMode: true });

const serve = (env: Record<string, string>) =>
  Bun.spawnSync(
    [
      ...gatehouseCommand(),
      "serve",
      "--config",
      join(dir, "gateway.yaml"),
      "--listen",
      "127.0.0.1:0",
      "--admin",
      "127.0.0.1:0",
      "--db",
      db(),
    ],
    { cwd: root, env: { PATH: process.env.PATH ?? "", ...env } },
  );

/** The bytes SQLite keeps data in (the shared-memory index is rebuilt by any reader). */
const dataBytes = () =>
  ["", "-wal"].map((suffix) =>
    existsSync(db() + suffix) ? readFileSync(db() + suffix).toString("hex") : null,
  );

describe("the vault across restarts", () => {
  beforeAll(storeCredentials);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("with the master key they were stored with, the stored values are served after a restart", async () => {
    const gw = await startAgain({ GATEHOUSE_MASTER_KEY: KEY_A });
    try {
      await gw.data("/restart", "acme-secret-0001");
      await gw.data("/restart", "globex-secret-0001");
      expect(up.received.filter((r) => r.target === "/restart").map((r) => r.headers.authorization)).toEqual([
        `Bearer ${ACME}`,
        `Bearer ${PETSTORE}`,
      ]);
    } finally {
      await gw.close();
    }
    // The synchronous start cannot decrypt (WebCrypto is asynchronous) and says so instead of serving without.
    expect(() =>
      startGateway({ configPath: join(dir, "gateway.yaml"), db: db(), env: { GATEHOUSE_MASTER_KEY: KEY_A } }),
    ).toThrow(StartupError);
  });

  test("a wrong or missing master key stops start-up with one line and exit 3, the database untouched", () => {
    const before = dataBytes();
    const wrong = serve({ GATEHOUSE_MASTER_KEY: KEY_B });
    expect(wrong.exitCode).toBe(3);
    const line = wrong.stderr.toString();
    expect(line).toMatch(
      /^gatehouse serve: the master key from GATEHOUSE_MASTER_KEY \(id [0-9a-f]{16}\) is not the one the stored credentials are encrypted with \(id [0-9a-f]{16}\); give that key \(after rotate-master-key, the new one\)\. Nothing was changed\n$/,
    );
    const missing = serve({});
    expect(missing.exitCode).toBe(3);
    expect(missing.stderr.toString()).toBe(
      "gatehouse serve: the database holds stored credentials, and no master key is given; set GATEHOUSE_MASTER_KEY to " +
        "the key they were stored with (or its file's path in GATEHOUSE_MASTER_KEY_FILE or vault.masterKeyFile)\n",
    );
    expect(dataBytes()).toEqual(before);
  });
});

describe("rotate-master-key", () => {
  beforeAll(storeCredentials);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const rotate = (args: string[], env: Record<string, string>) =>
    Bun.spawnSync(
      [
        ...gatehouseCommand(),
        "rotate-master-key",
        "--config",
        join(dir, "gateway.yaml"),
        "--db",
        db(),
        ...args,
      ],
      {
        cwd: root,
        env: { PATH: process.env.PATH ?? "", ...env },
      },
    );

  test("re-encrypts every credential under the new key; the old key no longer opens them", async () => {
    expect(rotate([], { GATEHOUSE_MASTER_KEY: KEY_A }).exitCode).toBe(2);
    const keyFile = join(dir, "new.key");
    writeFileSync(keyFile, `${KEY_B}\n`);
    // The old key is checked first: a wrong one changes nothing.
    expect(rotate(["--new-key-file", keyFile], { GATEHOUSE_MASTER_KEY: KEY_B }).exitCode).toBe(3);

    const r = rotate(["--new-key-file", keyFile], { GATEHOUSE_MASTER_KEY: KEY_A });
    expect(r.stderr.toString()).toBe("");
    expect(r.exitCode).toBe(0);
    expect(r.stdout.toString()).toStartWith("re-encrypted 2 credentials (key id ");

    const sqlite = new Database(db(), { readonly: true });
    const rows = sqlite.query("SELECT name, iv, ciphertext, key_id AS keyId FROM credentials").all() as {
      name: string;
      iv: Uint8Array;
      ciphertext: Uint8Array;
      keyId: string;
    }[];
    sqlite.close();
    const oldKey = await importMasterKey(decodeMasterKey(KEY_A) as Uint8Array);
    const newKey = await importMasterKey(decodeMasterKey(KEY_B) as Uint8Array);
    expect(rows.map((row) => row.keyId)).toEqual([newKey.id, newKey.id]);
    for (const row of rows) {
      await expect(open(oldKey, row.name, row)).rejects.toBeInstanceOf(DecryptError);
      expect(await open(newKey, row.name, row)).toBe(row.name === "petstore-token" ? PETSTORE : ACME);
    }

    expect(serve({ GATEHOUSE_MASTER_KEY: KEY_A }).exitCode).toBe(3);
    const gw = await startAgain({ GATEHOUSE_MASTER_KEY_FILE: keyFile });
    try {
      await gw.data("/rotated", "globex-secret-0001");
      expect(up.received.filter((x) => x.target === "/rotated").map((x) => x.headers.authorization)).toEqual([
        `Bearer ${PETSTORE}`,
      ]);
    } finally {
      await gw.close();
    }
  });
});

describe("a rotation under a running gateway", () => {
  beforeAll(storeCredentials);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("the gateway keeps serving, but refuses to store under the old key until restarted", async () => {
    const gw = await startAgain({ GATEHOUSE_MASTER_KEY: KEY_A });
    try {
      const other = openDb(db());
      try {
        const oldKey = findMasterKey({ GATEHOUSE_MASTER_KEY: KEY_A }, {});
        const newKey = findMasterKey({ GATEHOUSE_MASTER_KEY: KEY_B }, {})!;
        expect((await rotateMasterKey(other, oldKey, newKey, new ManualClock())).credentials).toBe(2);
      } finally {
        other.close();
      }
      const r = await gw.admin("PUT", "/credentials/petstore-token", { value: "tok-after-rotation" });
      expect(r.status).toBe(409);
      expect(r.json.detail).toContain("restart gatehouse with the new key");
      await gw.data("/during-rotation", "globex-secret-0001");
      expect(
        up.received.filter((x) => x.target === "/during-rotation").map((x) => x.headers.authorization),
      ).toEqual([`Bearer ${PETSTORE}`]);
    } finally {
      await gw.close();
    }
  });
});

describe("a ciphertext moved to another name", () => {
  beforeAll(storeCredentials);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test("fails to decrypt, loudly, instead of serving the other credential's value", async () => {
    // Swap the two rows' sealed values whole (IV and ciphertext): without the name bound in, each
    // would decrypt cleanly to the other's value.
    const sqlite = new Database(db());
    const [a, b] = sqlite.query("SELECT name, iv, ciphertext FROM credentials ORDER BY name").all() as {
      name: string;
      iv: Uint8Array;
      ciphertext: Uint8Array;
    }[];
    const update = sqlite.query("UPDATE credentials SET iv = ?, ciphertext = ? WHERE name = ?");
    update.run(b!.iv, b!.ciphertext, a!.name);
    update.run(a!.iv, a!.ciphertext, b!.name);
    sqlite.close();

    const gw = await startAgain({ GATEHOUSE_MASTER_KEY: KEY_A });
    try {
      const failures = gw.logs
        .map((l) => JSON.parse(l))
        .filter((l) => l.msg.startsWith("stored credential cannot"));
      expect(failures.map((l) => [l.level, l.credential])).toEqual([
        ["error", "acme-petstore-token"],
        ["error", "petstore-token"],
      ]);
      const listed = (await gw.admin("GET", "/credentials")).json.items;
      expect(listed.map((c: { available: boolean }) => c.available)).toEqual([false, false]);

      const r = await gw.data("/swapped", "acme-secret-0001");
      expect(r.status).toBe(502);
      expect(r.text).not.toContain("acme-petstore-token");
      expect(up.received.filter((x) => x.target === "/swapped")).toEqual([]);
      expect(gw.logs.at(-1)).toContain('"credential":"acme-petstore-token"');
      for (const value of [PETSTORE, ACME])
        expect([...gw.answers, ...gw.logs].join("\n")).not.toContain(value);

      // Storing it again mends it.
      await gw.admin("PUT", "/credentials/acme-petstore-token", { value: ACME });
      expect((await gw.data("/swapped", "acme-secret-0001")).status).toBe(200);
      expect(up.received.filter((x) => x.target === "/swapped").map((x) => x.headers.authorization)).toEqual([
        `Bearer ${ACME}`,
      ]);
    } finally {
      await gw.close();
    }
  });

  test("rotate-master-key refuses while one cannot be decrypted, and changes nothing", () => {
    const rows = () => {
      const sqlite = new Database(db(), { readonly: true });
      const all = sqlite.query("SELECT name, hex(iv), hex(ciphertext), key_id FROM credentials").all();
      sqlite.close();
      return all;
    };
    const before = rows();
    const keyFile = join(dir, "new.key");
    writeFileSync(keyFile, KEY_B);
    const r = Bun.spawnSync(
      [
        ...gatehouseCommand(),
        "rotate-master-key",
        "--config",
        join(dir, "gateway.yaml"),
        "--db",
        db(),
        "--new-key-file",
        keyFile,
      ],
      { cwd: root, env: { PATH: process.env.PATH ?? "", GATEHOUSE_MASTER_KEY: KEY_A } },
    );
    expect(r.exitCode).toBe(1);
    expect(r.stderr.toString()).toBe(
      'gatehouse rotate-master-key: credential "petstore-token" cannot be decrypted with the current master key ' +
        "(it was altered or moved from another name); nothing was changed. Store it again " +
        "(PUT /credentials/petstore-token) or delete it, then rotate\n",
    );
    expect(rows()).toEqual(before);
  });
});

test("new-master-key prints a fresh key: base64 of 32 random bytes", () => {
  const run = () => Bun.spawnSync([...gatehouseCommand(), "new-master-key"], { cwd: root });
  const [one, two] = [run(), run()].map((r) => r.stdout.toString());
  expect(one).toMatch(/^[A-Za-z0-9+/]{43}=\n$/);
  expect(Buffer.from(one!.trim(), "base64").length).toBe(32);
  expect(one).not.toBe(two);
});
