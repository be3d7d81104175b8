/**
 * API keys are stored and looked up only as "sha256:<hex>". Keys are long random strings, so a fast
 * unsalted hash is the right tool (as Unkey and GitHub do): there is nothing to brute-force.
 */
import { API_KEY_PREFIX, isWellFormedApiKey } from "./api-key-format.ts";

export function hashKey(secret: string): string {
  return `sha256:${new Bun.CryptoHasher("sha256").update(secret).digest("hex")}`;
}

/**
 * What a presented key may look like before we spend a hash on it: visible ASCII, sane length, and
 * for generated keys (the `ghk_` prefix) a valid checksum. Keys written in gateway.yaml keep any form.
 */
export function plausibleKey(secret: string): boolean {
  if (secret.length < 4 || secret.length > 256 || !/^[\x21-\x7e]+$/.test(secret)) return false;
  return !secret.startsWith(API_KEY_PREFIX) || isWellFormedApiKey(secret);
}
