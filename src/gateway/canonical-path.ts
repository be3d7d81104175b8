/**
 * The one canonical path every decision is made on and that is forwarded upstream.
 *
 * Bun hands us the request target already parsed as a WHATWG URL: dot segments (also `%2e`-encoded)
 * are resolved, `\` became `/`, an absolute-form target lost its host, and raw bytes outside ASCII
 * arrive percent-encoded (invalid UTF-8 as U+FFFD). What remains is anything an upstream might read
 * differently from how we matched it, so this module either brings it to one form or refuses it:
 * - percent-encoded unreserved characters are decoded (`/v1/%61dmin` is `/v1/admin`), other escapes
 *   are upper-cased; repeated slashes are merged;
 * - refused, because some upstream decodes, splits or normalizes them into another path: encoded
 *   `/`, `\`, `#`, `?` (a server that decodes before splitting sees a new segment, fragment or
 *   query), control characters, `;` (path parameters, which Java servers strip before routing:
 *   `/admin;x` and `..;`), a `%25` that a second decoding would turn into an escape (also one our
 *   own decoding produced: `%25%34%31` becomes `%2541`), invalid escapes, bytes that are not valid
 *   UTF-8 (overlong `%C0%AE` is `.` to lenient decoders), and non-ASCII characters that NFKC
 *   normalization changes (fullwidth `／`, ligatures) or that case mapping turns into ASCII
 *   (`ſ` → `S`, Kelvin `K` → `k`), since some servers normalize or case-fold paths before routing.
 * What is left an upstream may still read case-insensitively or decoded (`/v1/ADMIN`,
 * `items%3Apurge`); the lenient segments spell out that reading for deny rules to match.
 */

export type CanonicalResult =
  | {
      ok: true;
      path: string;
      segments: string[];
      /** `segments` as the most lenient upstream reads them: percent-decoded, case-folded. */
      lenientSegments: string[];
      query: string;
    }
  | { ok: false; reason: string };

const MAX_PATH = 8192;
const hex = "0123456789ABCDEF";
const isHex = (c: number) => (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
const hexVal = (c: number) => (c <= 57 ? c - 48 : (c | 32) - 87);
const isUnreserved = (c: number) =>
  (c >= 65 && c <= 90) ||
  (c >= 97 && c <= 122) ||
  (c >= 48 && c <= 57) ||
  c === 45 ||
  c === 46 ||
  c === 95 ||
  c === 126;

/** Splits Bun's `req.url` ("http://host/path?query#frag") into a canonical path and the raw query. */
export function canonicalize(url: string): CanonicalResult {
  const schemeEnd = url.indexOf("://");
  const pathStart = url.indexOf("/", schemeEnd < 0 ? 0 : schemeEnd + 3);
  if (pathStart < 0) return { ok: false, reason: "the request target has no path" };
  let end = url.length;
  const hash = url.indexOf("#", pathStart);
  if (hash >= 0) end = hash;
  const q = url.indexOf("?", pathStart);
  const pathEnd = q >= 0 && q < end ? q : end;
  const query = q >= 0 && q < end ? url.slice(q + 1, end) : "";
  const raw = url.slice(pathStart, pathEnd);
  if (raw.length > MAX_PATH) return { ok: false, reason: "the path is too long" };
  return canonicalizePath(raw, query);
}

export function canonicalizePath(raw: string, query = ""): CanonicalResult {
  if (!needsWork.test(raw)) {
    const segments = segmentsOf(raw);
    return { ok: true, path: raw, segments, lenientSegments: segments, query };
  }
  if (!needsDecoding.test(raw)) {
    return {
      ok: true,
      path: raw,
      segments: segmentsOf(raw),
      lenientSegments: segmentsOf(raw.toLowerCase()), // printable ASCII: foldCase is toLowerCase
      query,
    };
  }
  if (raw.includes(";")) return refused("path parameters (;) are not accepted");
  let out = "";
  let nonAscii = false;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === 47 /* / */ && out.endsWith("/")) continue;
    if (c !== 37 /* % */) {
      if (c <= 0x20 || c >= 0x7f || c === 0x5c)
        return refused("the path has a raw backslash, space, control or non-ASCII character");
      out += raw[i];
      continue;
    }
    const h1 = raw.charCodeAt(i + 1);
    const h2 = raw.charCodeAt(i + 2);
    if (!isHex(h1) || !isHex(h2)) return refused("the path has an invalid percent-escape");
    const byte = hexVal(h1) * 16 + hexVal(h2);
    i += 2;
    if (byte >= 0x80) nonAscii = true;
    else if (byte === 0x2f || byte === 0x5c) return refused("encoded slashes are not accepted in paths");
    else if (byte < 0x20 || byte === 0x7f) return refused("control characters are not accepted in paths");
    else if (byte === 0x23 || byte === 0x3f) return refused("encoded # and ? are not accepted in paths");
    else if (byte === 0x3b) return refused("path parameters (;) are not accepted");
    else if (isUnreserved(byte)) {
      out += String.fromCharCode(byte);
      continue;
    }
    out += `%${hex[byte >> 4]}${hex[byte & 15]}`;
  }
  // Checked on the result, not the input: decoding can complete an escape (`%25%34%31` is `%2541`).
  if (secondEscape.test(out)) return refused("double-encoded paths are not accepted");
  const unicode = nonAscii ? unicodeProblem(out) : undefined;
  if (unicode) return refused(unicode);
  const segments = segmentsOf(out);
  // Decoding can only now reveal a dot segment the URL parser did not resolve (e.g. `%2E` next to `.`).
  for (const s of segments) if (s === "." || s === "..") return refused("dot segments are not accepted");
  // Every escape left is valid UTF-8 (or `%25`), so decoding cannot throw.
  const lenientSegments = segments.map((s) => foldCase(s.includes("%") ? decodeURIComponent(s) : s));
  return { ok: true, path: out, segments, lenientSegments, query };
}

/**
 * How case-insensitive servers compare: upper then lower case, so that `ADMIN`, `Admin` and
 * `admin` meet (and `ς`, `σ`, `Σ`). For ASCII it is plain lower case.
 */
export const foldCase = (s: string) => s.toUpperCase().toLowerCase();

// A path of printable ASCII without `%`, `;`, `\` or `//` is already canonical; without upper case
// too, it is its own lenient reading. That is the common case, so one character class (faster than
// an alternation) tells it apart.
const needsWork = /[^!-$&-:<-@[\]-~]|\/\//;
const needsDecoding = /[^!-$&-:<-[\]-~]|\/\//;
// What a second decoding would read as an escape: `%XX`, and IIS's `%uXXXX`.
const secondEscape = /%25(?:[0-9A-Fa-f]{2}|[Uu][0-9A-Fa-f]{4})/;
const notUtf8 = "percent-encoded bytes that are not valid UTF-8 are not accepted";

const refused = (reason: string): CanonicalResult => ({ ok: false, reason });
const segmentsOf = (path: string) => (path === "/" ? [] : path.slice(1).split("/"));

/**
 * Why the non-ASCII characters of a canonical path have no safe form, or undefined. Servers that
 * apply NFKC or case-insensitive matching would read `／`, `ａdmin` or `ſecret` as ASCII we never
 * judged, and lenient UTF-8 decoders read overlong forms as `.` and `/`.
 */
function unicodeProblem(path: string): string | undefined {
  let text: string;
  try {
    text = decodeURIComponent(path); // throws on overlong forms, surrogates, stray or missing bytes
  } catch {
    return notUtf8;
  }
  // Bun's URL parser turns raw bytes that are not UTF-8 into U+FFFD.
  if (text.includes("\uFFFD")) return notUtf8;
  if (/[\u0080-\u009F]/.test(text)) return "control characters are not accepted in paths";
  if (text.normalize("NFKC") !== text)
    return "characters that Unicode (NFKC) normalization changes are not accepted";
  for (const ch of text) {
    if (ch > "\x7F" && /[\0-\x7F]/.test(ch.toLowerCase() + ch.toUpperCase()))
      return "non-ASCII characters whose upper or lower case is ASCII are not accepted";
  }
  return undefined;
}
