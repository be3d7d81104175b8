/**
 * The ways an aggressive upstream may read a path gatehouse forwards, as small pure functions: each
 * takes a path and gives the path such a server would route on. `readings` combines them into every
 * path reachable by applying any of them, in the orders servers do, up to three decodings deep.
 */

/** Percent-decodes to bytes, leaving malformed escapes as they are, then decodes `bytes` to text. */
function percentDecode(path: string, utf8: (bytes: number[]) => string, unicodeEscapes = false): string {
  let out = "";
  let bytes: number[] = [];
  const flush = () => {
    if (bytes.length) out += utf8(bytes);
    bytes = [];
  };
  for (let i = 0; i < path.length; i++) {
    const c = path[i]!;
    if (c === "%" && /^[0-9A-Fa-f]{2}$/.test(path.slice(i + 1, i + 3))) {
      bytes.push(Number.parseInt(path.slice(i + 1, i + 3), 16));
      i += 2;
      continue;
    }
    flush();
    if (unicodeEscapes && c === "%" && /^[uU][0-9A-Fa-f]{4}$/.test(path.slice(i + 1, i + 6))) {
      out += String.fromCharCode(Number.parseInt(path.slice(i + 2, i + 6), 16));
      i += 5;
      continue;
    }
    out += c;
  }
  flush();
  return out;
}

const strictUtf8 = (bytes: number[]) => new TextDecoder().decode(new Uint8Array(bytes));

/**
 * A UTF-8 decoder that, like several old servers, takes the bits of a sequence without checking it
 * is the shortest form: `C0 AE` is `.`, `C0 AF` and `E0 80 AF` are `/`, surrogates pass.
 */
function lenientUtf8(bytes: number[]): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    const n = continuations(b);
    const tail = bytes.slice(i + 1, i + 1 + n);
    if (n < 0 || tail.length < n || tail.some((c) => (c & 0xc0) !== 0x80)) {
      out += "\uFFFD";
      continue;
    }
    let cp = n === 0 ? b : b & (0x3f >> n);
    for (const c of tail) cp = (cp << 6) | (c & 0x3f);
    i += n;
    out += cp > 0x10ffff ? "\uFFFD" : cp >= 0x10000 ? String.fromCodePoint(cp) : String.fromCharCode(cp);
  }
  return out;
}

/** How many continuation bytes follow lead byte `b`; -1 when `b` cannot lead. */
const continuations = (b: number) =>
  b < 0x80 ? 0 : b < 0xc0 ? -1 : b < 0xe0 ? 1 : b < 0xf0 ? 2 : b < 0xf8 ? 3 : -1;

export const decodeOnce = (p: string) => percentDecode(p, strictUtf8);
export const decodeOverlong = (p: string) => percentDecode(p, lenientUtf8);
/** IIS also reads `%uXXXX`. */
export const decodeIis = (p: string) => percentDecode(p, strictUtf8, true);
export const backslashAsSlash = (p: string) => p.replaceAll("\\", "/");
/** A server that decodes before it splits off the query and fragment, or a C string ending at NUL. */
export const truncate = (p: string) => p.replace(/[#?\0].*$/s, "");
/** Java servers drop `;parameters` from each segment before routing. */
export const stripParameters = (p: string) => p.replace(/;[^/]*/g, "");
export const mergeSlashes = (p: string) => p.replace(/\/{2,}/g, "/");
/**
 * Case-insensitive comparison by simple (one code point to one) case mapping, as Java's
 * Character.toLowerCase and .NET's ToUpperInvariant do: `İ` is `i`, `ı` is `I`. Given in lower
 * case, as the rules are; the simple mapping is approximated by the first code point of the full one.
 */
const first = (s: string) => String.fromCodePoint(s.codePointAt(0)!);
export const simpleLower = (p: string) => [...p].map((c) => first(c.toLowerCase())).join("");
export const simpleUpperLower = (p: string) =>
  [...p].map((c) => first(first(c.toUpperCase()).toLowerCase())).join("");
/** Case-insensitive comparison of ASCII letters; lower case, as the rules are. */
export const asciiFold = (p: string) => p.replace(/[A-Z]+/g, (m) => m.toLowerCase());
export const unicodeLower = (p: string) => p.toLowerCase();
export const unicodeUpperLower = (p: string) => p.toUpperCase().toLowerCase();
export const nfkc = (p: string) => p.normalize("NFKC");

/** RFC 3986 remove_dot_segments. */
export function resolveDots(p: string): string {
  const out: string[] = [];
  const parts = p.split("/");
  parts.forEach((s, i) => {
    const last = i === parts.length - 1;
    if (s === "..") {
      if (out.length > 1) out.pop();
      if (last) out.push("");
    } else if (s === ".") {
      if (last) out.push("");
    } else out.push(s);
  });
  const r = out.join("/");
  return r.startsWith("/") ? r : `/${r}`;
}

const decoders = [decodeOnce, decodeOverlong, decodeIis];
const normalizers = [
  backslashAsSlash,
  truncate,
  stripParameters,
  mergeSlashes,
  resolveDots,
  simpleLower,
  simpleUpperLower,
  asciiFold,
  unicodeLower,
  unicodeUpperLower,
  nfkc,
];

/**
 * Every path a server could route `path` as: up to three rounds of (maybe decode, then maybe each
 * normalization in turn). Each step may or may not apply, so every subset and order a real server
 * uses is among them; the set stays small because most steps change nothing.
 */
export function readings(path: string, rounds = 3): Set<string> {
  let all = new Set([path]);
  const step = (f: (p: string) => string) => {
    for (const p of [...all]) all.add(f(p));
  };
  for (let r = 0; r < rounds; r++) {
    const next = new Set(all);
    for (const p of all) for (const d of decoders) next.add(d(p));
    all = next;
    for (const f of normalizers) step(f);
  }
  return all;
}

/** Splits a path as a router does: the segments after the leading `/`. */
export const segmentsOf = (path: string) => {
  const p = path.startsWith("/") ? path : `/${path}`;
  return p === "/" ? [] : p.slice(1).split("/");
};
