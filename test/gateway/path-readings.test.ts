/**
 * Differential test of the canonical path: random request targets from the characters attackers
 * use, parsed as Bun.serve parses them, then canonicalized and judged by real rules. Whatever
 * gatehouse lets through must be allowed under every reading an aggressive upstream could make of
 * the path it forwards (test/support/path-readings.ts): decoded up to three times, with overlong UTF-8
 * or `%u` escapes, case-folded, NFKC-normalized, `;` stripped, `//` merged, `\` as `/`, cut at
 * `#`, `?` or NUL, dot segments resolved.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { RuleDecl } from "../../src/config/schema.ts";
import { canonicalize } from "../../src/gateway/canonical-path.ts";
import { compileRule } from "../../src/gateway/compile-policies.ts";
import { matches, parsePattern } from "../../src/gateway/pattern.ts";
import type { TenantView } from "../../src/gateway/snapshot.ts";
import { prng } from "../../src/lib/prng.ts";
import type { RequestContext } from "../../src/policies/policy.ts";
import { createRulesPolicy } from "../../src/policies/rules/index.ts";
import { readings, segmentsOf } from "../support/path-readings.ts";
import { rawRequest } from "../support/raw-http.ts";

const SEED = 0x9a7e;
const CASES = 6000;

const RULES: RuleDecl[] = [
  { allow: "* /v1/**" },
  { deny: "* /v1/admin/**" },
  { deny: "GET /v1/items/:id/secret" },
  { deny: "POST /v1/items:purge" },
];
const METHODS = ["GET", "POST", "DELETE"];

/** Request-target pieces: a string is sent as UTF-8, a number array as raw bytes. */
const PLAIN: string[] = [
  // names the rules use, in several cases and spellings
  ...["v1", "V1", "admin", "ADMIN", "Admin", "aDmIn", "items", "ITEMS", "secret", "Secret", "1", "42"],
  ...["items:purge", "ITEMS:Purge", "items%3Apurge", "items%3apurge", "%61dmin", "%41DMIN", "x"],
  ...["/", "/", "/", "/", "/", "/", "%C3%A9", "%CE%B1", "%20", "%25", "-", "~"],
];
const DANGEROUS: (string | number[])[] = [
  // structure
  ...["//", ".", "..", "%2e", "%2E", "%2e%2e", "\\", "%2f", "%2F", "%5c", "%5C"],
  ...[";", "%3b", ";x=1", "#", "%23", "?", "%3f", "%3F"],
  // percent signs and hex digits, so that decoding can build escapes
  ...["%", "%25", "%2525", "%41", "%61", "%34%31", "%36%31", "%32%65", "%32%66", "%35%63", "%25%36%31"],
  ...["%u0061", "%u002e", "%u002f", "%25u002f", "2", "5", "e", "E", "f", "F", "a", "4", "1", "6", "c"],
  // control characters
  ...["%00", "%0a", "%0d", "%09", "%7f", "%1f", "%C2%85", "\x7f"],
  // percent-encoded bytes that are not UTF-8: overlong . and /, stray, truncated, surrogate, too high
  ...["%C0%AE", "%C0%AF", "%E0%80%AE", "%E0%80%AF", "%F0%80%80%AE", "%C1%81", "%80", "%BF", "%C3"],
  ...["/%C0%AE%C0%AE/", "%C0%AE%C0%AE%C0%AF", "/%E0%80%AE%E0%80%AE/", "%C1%A1dmin", "%C1%81DMIN"],
  ...["%E2%82", "%ED%A0%80", "%ED%BF%BF", "%F4%90%80%80", "%F8%88%80%80%80", "%FF", "%FE"],
  // raw bytes that are not UTF-8
  [0xc0, 0xae],
  [0xc0, 0xaf],
  [0x80],
  [0xff],
  [0xe0, 0x80, 0xae],
  // plain UTF-8
  ...["%C3%A9", "%c3%a9", "é", "%E2%82%AC", "%F0%9F%98%80", "%CE%B1", "%CF%82", "%CE%A3"],
  // characters that case mapping or NFKC turn into ASCII or into something else
  ...["%C4%B0", "%C4%B1", "%C5%BF", "%E2%84%AA", "%C3%9F", "%EF%AC%81", "%EF%BC%8F", "%EF%BC%8E"],
  ...["%EF%BD%81", "%EF%BC%A1", "%EF%BC%85", "%E2%80%A4", "%CC%81", "e%CC%81", "ſ", "İ", "ａ", "／"],
  ...["％", "ＡＤＭＩＮ", "%EF%BC%A1%EF%BC%A4%EF%BC%AD%EF%BC%A9%EF%BC%AE", "adm%C4%B1n", "%C4%B0tems"],
  ...["%C4%B0tems/1/secret", "items/1/%C3%9Fecret", "items/1/SECRE%E2%84%AA", "%C4%B1TEMS/1/secret"],
];

const encoder = new TextEncoder();

function generator(seed: number) {
  const rand = prng(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
  return () => {
    const bytes: number[] = [...encoder.encode(rand() < 0.6 ? "/v1/" : "/")];
    const n = 1 + Math.floor(rand() * 8);
    for (let i = 0; i < n; i++) {
      const t = rand() < 0.75 ? pick(PLAIN) : pick(DANGEROUS);
      bytes.push(...(typeof t === "string" ? encoder.encode(t) : t));
    }
    return { method: pick(METHODS), target: new Uint8Array(bytes) };
  };
}

/**
 * What Bun.serve hands over as `req.url` for an origin-form target: the target decoded as UTF-8
 * (bytes that are not UTF-8 become U+FFFD) and parsed as a WHATWG URL. Checked against a real
 * Bun.serve below.
 */
const bunUrl = (target: Uint8Array, host = "h") =>
  new URL(`http://${host}${new TextDecoder().decode(target)}`).href;

const show = (target: Uint8Array) => JSON.stringify(Buffer.from(target).toString("latin1"));

const rulesPolicy = createRulesPolicy();
const tenant = { rules: RULES.map((r, i) => compileRule(r, `rules[${i}]`)) } as unknown as TenantView;
const readingRules = RULES.map((r) =>
  "allow" in r ? { allow: true, p: parsePattern(r.allow) } : { allow: false, p: parsePattern(r.deny) },
);

/** How the rules judge one reading: as written, on the reading's segments exactly. */
function allowsReading(method: string, path: string): boolean {
  const segs = segmentsOf(path);
  const hit = (allow: boolean) => readingRules.some((r) => r.allow === allow && matches(r.p, method, segs));
  return hit(true) && !hit(false);
}

describe("every reading of a forwarded path is judged as gatehouse judged it", () => {
  test(`${CASES} random targets (seed ${SEED})`, () => {
    const next = generator(SEED);
    const failures: string[] = [];
    const tally = { refused: 0, denied: 0, allowed: 0 };
    for (let i = 0; i < CASES && failures.length < 5; i++) {
      const { method, target } = next();
      const c = canonicalize(bunUrl(target));
      if (!c.ok) {
        tally.refused++;
        continue;
      }
      const ctx = { method, segments: c.segments, lenientSegments: c.lenientSegments, tenant };
      if (rulesPolicy.check(ctx as unknown as RequestContext)) {
        tally.denied++;
        continue;
      }
      tally.allowed++;
      const where = `seed ${SEED} case ${i}: ${method} ${show(target)} forwarded as ${c.path}`;
      // The forwarded path survives the upstream request's own URL parsing, and a second canonicalizing.
      if (new URL(`http://upstream${c.path}`).pathname !== c.path)
        failures.push(`${where}: fetch rewrites it`);
      const again = canonicalize(`http://h${c.path}`);
      if (!again.ok || again.path !== c.path) failures.push(`${where}: not canonical`);
      for (const r of readings(c.path)) {
        if (!allowsReading(method, r)) failures.push(`${where}: denied when read as ${JSON.stringify(r)}`);
      }
    }
    expect(failures).toEqual([]);
    console.log(
      `${CASES} targets: ${tally.refused} refused, ${tally.denied} denied, ${tally.allowed} allowed`,
    );
    // The generator reaches all three outcomes often, or the property says little.
    expect(tally.refused).toBeGreaterThan(CASES / 10);
    expect(tally.denied).toBeGreaterThan(CASES / 20);
    expect(tally.allowed).toBeGreaterThan(CASES / 10);
  });
});

describe("the model of Bun.serve's URL parsing used above", () => {
  let server: ReturnType<typeof Bun.serve>;
  beforeAll(() => {
    server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: (req) => new Response(req.url) });
  });
  afterAll(() => server.stop(true));

  test("gives the req.url a real Bun.serve gives, for generated targets", async () => {
    const next = generator(SEED + 1);
    const mismatches: string[] = [];
    let served = 0;
    for (let i = 0; i < 150; i++) {
      const { target } = next();
      const head = encoder.encode(" HTTP/1.1\r\nHost: gateway.test\r\nConnection: close\r\n\r\n");
      const res = await rawRequest(
        server.port!,
        new Uint8Array([...encoder.encode("GET "), ...target, ...head]),
      );
      if (res.status !== 200) continue; // Bun refused it itself; it never reaches gatehouse
      served++;
      const body = Buffer.from(res.body, "latin1").toString("utf8");
      const model = bunUrl(target, "gateway.test");
      if (body !== model) mismatches.push(`${show(target)}: Bun ${body}, model ${model}`);
    }
    expect(mismatches).toEqual([]);
    expect(served).toBeGreaterThan(100);
  });
});
