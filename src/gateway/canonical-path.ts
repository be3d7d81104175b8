/**
 * The one canonical path every decision is made on and that is forwarded upstream.
 *
 * Bun hands us the request target already parsed as a WHATWG URL: dot segments (also `%2e`-encoded)
 * are resolved, `\` became `/`, an absolute-form target lost its host. What remains ambiguous is
 * anything an upstream might decode differently from how we matched it, so this module either
 * brings it to one form or refuses it:
 * - percent-encoded unreserved characters are decoded (`/v1/%61dmin` is `/v1/admin`), other escapes
 *   are upper-cased;
 * - repeated slashes are merged;
 * - encoded `/` and `\`, encoded control characters, double encoding (`%25` followed by hex), `;`
 *   (path parameters, which Java servers strip before routing: `/admin;x` and `..;`) and invalid
 *   escapes have no safe canonical form and are refused.
 */

export type CanonicalResult =
  | { ok: true; path: string; segments: string[]; query: string }
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
  // Fast path: nothing to decode and no doubled slash is the common case.
  if (!/[%;]|\/\//.test(raw)) {
    return { ok: true, path: raw, segments: raw === "/" ? [] : raw.slice(1).split("/"), query };
  }
  if (raw.includes(";")) return { ok: false, reason: "path parameters (;) are not accepted" };
  let out = "";
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === 47 /* / */ && out.endsWith("/")) continue;
    if (c !== 37 /* % */) {
      out += raw[i];
      continue;
    }
    const h1 = raw.charCodeAt(i + 1);
    const h2 = raw.charCodeAt(i + 2);
    if (!isHex(h1) || !isHex(h2)) return { ok: false, reason: "the path has an invalid percent-escape" };
    const byte = hexVal(h1) * 16 + hexVal(h2);
    i += 2;
    if (byte === 0x2f || byte === 0x5c)
      return { ok: false, reason: "encoded slashes are not accepted in paths" };
    if (byte < 0x20 || byte === 0x7f)
      return { ok: false, reason: "control characters are not accepted in paths" };
    if (byte === 0x25 && isHex(raw.charCodeAt(i + 1)) && isHex(raw.charCodeAt(i + 2))) {
      return { ok: false, reason: "double-encoded paths are not accepted" };
    }
    if (byte === 0x3b) return { ok: false, reason: "path parameters (;) are not accepted" };
    if (isUnreserved(byte)) out += String.fromCharCode(byte);
    else out += `%${hex[byte >> 4]}${hex[byte & 15]}`;
  }
  const segments = out === "/" ? [] : out.slice(1).split("/");
  // Decoding can only now reveal a dot segment the URL parser did not resolve (e.g. `%2E` next to `.`).
  for (const s of segments)
    if (s === "." || s === "..") return { ok: false, reason: "dot segments are not accepted" };
  return { ok: true, path: out, segments, query };
}
