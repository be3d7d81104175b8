/**
 * The vault's cryptography, all through WebCrypto: AES-256-GCM under the master key, a fresh random
 * 96-bit IV per value, and the credential's name as additional authenticated data, so a ciphertext
 * copied to another name (or another row's IV) fails to decrypt instead of serving the wrong value.
 */
import { createHmac } from "node:crypto";

export const MASTER_KEY_BYTES = 32;
const IV_BYTES = 12;
const AAD_PREFIX = "gatehouse credential v1\0";
/** How to make a key, for every message that asks for one. */
export const MAKE_A_KEY = "make one with `gatehouse new-master-key` (or `head -c 32 /dev/urandom | base64`)";

/** A master key ready for use. The raw bytes are not kept: only the non-extractable CryptoKey. */
export interface MasterKey {
  /** A one-way fingerprint (see keyId), stored beside each ciphertext. */
  readonly id: string;
  readonly key: CryptoKey;
}

export interface Sealed {
  readonly iv: Uint8Array;
  /** The ciphertext followed by GCM's 16-byte tag. */
  readonly ciphertext: Uint8Array;
}

/** The value cannot be decrypted with this key and name: a wrong key, another row's data, or tampering. */
export class DecryptError extends Error {}

/** The key as base64 text (a key file's content or the variable's value), or why it is not one. */
export function decodeMasterKey(text: string): Uint8Array | { error: string } {
  const trimmed = text.trim();
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(trimmed) || trimmed.length % 4 !== 0) {
    return { error: "is not base64" };
  }
  const bytes = Buffer.from(trimmed, "base64");
  if (bytes.length !== MASTER_KEY_BYTES) {
    return { error: `decodes to ${bytes.length} bytes; a master key is ${MASTER_KEY_BYTES}` };
  }
  return new Uint8Array(bytes);
}

/**
 * Names a key without revealing it: an HMAC of a fixed label under the key. Comparing it with the id
 * stored beside the ciphertexts tells a wrong key at start-up, before any decryption is tried.
 */
export function keyId(raw: Uint8Array): string {
  return createHmac("sha256", raw).update("gatehouse master key id").digest("hex").slice(0, 16);
}

export async function importMasterKey(raw: Uint8Array): Promise<MasterKey> {
  const key = await crypto.subtle.importKey("raw", raw as Uint8Array<ArrayBuffer>, "AES-GCM", false, [
    "encrypt",
    "decrypt",
  ]);
  return { id: keyId(raw), key };
}

export function newMasterKeyText(): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(MASTER_KEY_BYTES))).toString("base64");
}

const aad = (name: string) => new TextEncoder().encode(AAD_PREFIX + name);

export async function seal(key: MasterKey, name: string, value: string): Promise<Sealed> {
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const ciphertext = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: aad(name) },
    key.key,
    new TextEncoder().encode(value),
  );
  return { iv, ciphertext: new Uint8Array(ciphertext) };
}

export async function open(key: MasterKey, name: string, sealed: Sealed): Promise<string> {
  let plain: ArrayBuffer;
  try {
    plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: sealed.iv as Uint8Array<ArrayBuffer>, additionalData: aad(name) },
      key.key,
      sealed.ciphertext as Uint8Array<ArrayBuffer>,
    );
  } catch {
    throw new DecryptError(`credential "${name}" cannot be decrypted`);
  }
  return new TextDecoder("utf-8", { fatal: true }).decode(plain);
}
