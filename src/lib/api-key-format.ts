/**
 * Generated API keys: `ghk_` + 32 random base62 characters + a 6-character base62 CRC32 of the
 * random part (GitHub's token scheme). The prefix makes leaked keys easy to spot and scan for; the
 * checksum lets the data plane refuse a mistyped or made-up key without a hash or a lookup.
 */
export const API_KEY_PREFIX = "ghk_";
const RANDOM_LENGTH = 32;
const CHECKSUM_LENGTH = 6;
const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const SHAPE = new RegExp(`^${API_KEY_PREFIX}[0-9A-Za-z]{${RANDOM_LENGTH + CHECKSUM_LENGTH}}$`);

/** A uint32 as exactly 6 base62 digits (62^6 > 2^32). */
function base62Checksum(text: string): string {
  let n = Bun.hash.crc32(text);
  let out = "";
  for (let i = 0; i < CHECKSUM_LENGTH; i++) {
    out = ALPHABET[n % 62]! + out;
    n = Math.floor(n / 62);
  }
  return out;
}

/** Uniformly random [0-9A-Za-z] characters. */
export function randomBase62(length: number): string {
  let out = "";
  while (out.length < length) {
    for (const byte of crypto.getRandomValues(new Uint8Array(length * 2))) {
      // 248 = 4 * 62: rejecting the top bytes keeps every character equally likely.
      if (byte < 248 && out.length < length) out += ALPHABET[byte % 62];
    }
  }
  return out;
}

export function generateApiKey(): string {
  const random = randomBase62(RANDOM_LENGTH);
  return `${API_KEY_PREFIX}${random}${base62Checksum(random)}`;
}

/** Whether `secret` has the generated form and its checksum holds. */
export function isWellFormedApiKey(secret: string): boolean {
  if (!SHAPE.test(secret)) return false;
  const body = secret.slice(API_KEY_PREFIX.length);
  const random = body.slice(0, RANDOM_LENGTH);
  return base62Checksum(random) === body.slice(RANDOM_LENGTH);
}
