/**
 * API keys are stored and looked up only as "sha256:<hex>". Keys are long random strings, so a fast
 * unsalted hash is the right tool (as Unkey and GitHub do): there is nothing to brute-force.
 */
export function hashKey(secret: string): string {
  return `sha256:${new Bun.CryptoHasher("sha256").update(secret).digest("hex")}`;
}

/** What a presented key may look like before we spend a hash on it: visible ASCII, sane length. */
export function plausibleKey(secret: string): boolean {
  return secret.length >= 8 && secret.length <= 256 && /^[\x21-\x7e]+$/.test(secret);
}
