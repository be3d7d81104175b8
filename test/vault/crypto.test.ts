import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  DecryptError,
  decodeMasterKey,
  importMasterKey,
  keyId,
  newMasterKeyText,
  open,
  seal,
} from "../../src/vault/crypto.ts";
import { findMasterKey, MasterKeyError } from "../../src/vault/master-key.ts";

const KEY_A = Buffer.alloc(32, 0xa1).toString("base64");
const KEY_B = Buffer.alloc(32, 0xb2).toString("base64");

const raw = (text: string) => decodeMasterKey(text) as Uint8Array;

describe("vault crypto", () => {
  test("a sealed value opens under the same key and name, and nowhere else", async () => {
    const a = await importMasterKey(raw(KEY_A));
    const b = await importMasterKey(raw(KEY_B));
    const sealed = await seal(a, "petstore-token", "tok-123");
    expect(await open(a, "petstore-token", sealed)).toBe("tok-123");
    // The name is bound as additional data: the same bytes under another name fail.
    await expect(open(a, "other-token", sealed)).rejects.toBeInstanceOf(DecryptError);
    await expect(open(b, "petstore-token", sealed)).rejects.toBeInstanceOf(DecryptError);
    const flipped = { ...sealed, ciphertext: sealed.ciphertext.map((x, i) => (i === 0 ? x ^ 1 : x)) };
    await expect(open(a, "petstore-token", flipped)).rejects.toBeInstanceOf(DecryptError);
  });

  test("every seal takes a fresh 96-bit IV, so equal values never give equal ciphertexts", async () => {
    const a = await importMasterKey(raw(KEY_A));
    const one = await seal(a, "n", "same");
    const two = await seal(a, "n", "same");
    expect(one.iv.length).toBe(12);
    expect(Buffer.from(one.iv).equals(Buffer.from(two.iv))).toBe(false);
    expect(Buffer.from(one.ciphertext).equals(Buffer.from(two.ciphertext))).toBe(false);
    // GCM's 16-byte tag follows the ciphertext; nothing of the plaintext shows.
    expect(one.ciphertext.length).toBe("same".length + 16);
    expect(Buffer.from(one.ciphertext).includes("same")).toBe(false);
  });

  test("master keys: 32 bytes of base64, with a stable id that differs per key and reveals nothing", () => {
    const fresh = newMasterKeyText();
    expect(Buffer.from(fresh, "base64").length).toBe(32);
    expect(keyId(raw(KEY_A))).toBe(keyId(raw(`${KEY_A}\n`)));
    expect(keyId(raw(KEY_A))).not.toBe(keyId(raw(KEY_B)));
    expect(keyId(raw(KEY_A))).toMatch(/^[0-9a-f]{16}$/);
    expect(decodeMasterKey("not base64!")).toEqual({ error: "is not base64" });
    expect(decodeMasterKey(Buffer.alloc(16).toString("base64"))).toEqual({
      error: "decodes to 16 bytes; a master key is 32",
    });
  });

  test("a malformed key is refused without quoting it, with how to make one", () => {
    const nearly = `${KEY_A.slice(0, -2)}!=`;
    let error: unknown;
    try {
      findMasterKey({ GATEHOUSE_MASTER_KEY: nearly }, {});
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(MasterKeyError);
    expect((error as Error).message).toBe(
      "the master key in GATEHOUSE_MASTER_KEY is not base64; make one with `gatehouse new-master-key` (or `head -c 32 /dev/urandom | base64`)",
    );
    expect(() => findMasterKey({ GATEHOUSE_MASTER_KEY: KEY_A, GATEHOUSE_MASTER_KEY_FILE: "/x" }, {})).toThrow(
      "both GATEHOUSE_MASTER_KEY and GATEHOUSE_MASTER_KEY_FILE are set",
    );
    expect(() => findMasterKey({}, { vault: { masterKeyFile: "/no/such/key" } })).toThrow(
      "the master key file vault.masterKeyFile (/no/such/key) cannot be read (ENOENT)",
    );
    expect(findMasterKey({}, {})).toBeNull();
  });

  test("a key file, named by gateway.yaml or by GATEHOUSE_MASTER_KEY_FILE (which wins), holds the key's base64", () => {
    const dir = mkdtempSync(join(tmpdir(), "gatehouse-key-"));
    try {
      writeFileSync(join(dir, "a.key"), `${KEY_A}\n`);
      writeFileSync(join(dir, "b.key"), KEY_B);
      const fromConfig = findMasterKey({}, { vault: { masterKeyFile: join(dir, "a.key") } });
      expect(fromConfig?.id).toBe(keyId(raw(KEY_A)));
      const fromEnv = findMasterKey(
        { GATEHOUSE_MASTER_KEY_FILE: join(dir, "b.key") },
        { vault: { masterKeyFile: join(dir, "a.key") } },
      );
      expect(fromEnv?.id).toBe(keyId(raw(KEY_B)));
      expect(fromEnv?.from).toBe(`GATEHOUSE_MASTER_KEY_FILE (${join(dir, "b.key")})`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
