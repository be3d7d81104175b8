/**
 * An upstream's response head (RFC 9112), parsed strictly: whatever gatehouse cannot read exactly one
 * way is refused, because the framing it reads decides where this response ends and the next one
 * on the same connection begins. Refused: anything but HTTP/1.0 or 1.1, a status outside 100-599,
 * header names that are not tokens, control characters and bare CRs, folded lines, Content-Length
 * values that disagree or are not numbers, and Transfer-Encoding with chunked anywhere but last.
 * Lines may end in a bare LF, as RFC 9112 §2.2 allows a recipient to accept.
 */

/** Why a response could not be read; the code is what logs and metrics show. */
export class MalformedResponse extends Error {
  constructor(
    readonly code: "HPE_INVALID_RESPONSE" | "HPE_HEADER_OVERFLOW",
    message: string,
  ) {
    super(message);
  }
}

export type Framing =
  /** No body: HEAD, 1xx, 204, 304. */
  | { kind: "none" }
  | { kind: "length"; length: number }
  | { kind: "chunked" }
  /** Read until the upstream closes (no length, no chunked coding). */
  | { kind: "close" };

export interface ResponseHead {
  status: number;
  statusText: string;
  /** Lower-case names and values, alternating, in the order received. */
  headers: string[];
  /** Bytes the head took, its blank line included. */
  size: number;
  framing: Framing;
  /** Whether the connection may carry another request after this response. */
  keepAlive: boolean;
  /** Header names the Connection header lists: hop-by-hop for this message. */
  connectionTokens: string[] | null;
  /**
   * How long the connection may wait idle for the next request, a second short of what the
   * upstream's `Keep-Alive: timeout=N` says; null when it says nothing.
   */
  keepAliveMs: number | null;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const DIGITS = /^[0-9]{1,15}$/;

const NONE: Framing = { kind: "none" };
const CHUNKED: Framing = { kind: "chunked" };
const CLOSE: Framing = { kind: "close" };

/**
 * Where the head in `buf` ends (the index after its blank line), or -1 when it has not all arrived.
 */
export function headEnd(buf: Uint8Array, from = 0): number {
  let i = from;
  for (;;) {
    i = buf.indexOf(10, i);
    if (i < 0) return -1;
    if (buf[i + 1] === 10) return i + 2;
    if (buf[i + 1] === 13 && buf[i + 2] === 10) return i + 3;
    i++;
  }
}

const invalid = (why: string) => new MalformedResponse("HPE_INVALID_RESPONSE", `invalid response: ${why}`);

/**
 * Parses the head in `text` (latin1, up to and including its blank line). `bodyless` is true for a
 * HEAD request, whose response never has a body whatever its headers say.
 */
export function parseResponseHead(text: string, bodyless: boolean): ResponseHead {
  if (hasForbidden(text)) throw invalid("control character in the head");
  let eol = text.indexOf("\n");
  const statusLine = line(text, 0, eol);
  // "HTTP/1.1 200 OK": the reason may be empty, and its space with it.
  if (
    statusLine.length < 12 ||
    !statusLine.startsWith("HTTP/1.") ||
    (statusLine[7] !== "1" && statusLine[7] !== "0") ||
    statusLine[8] !== " " ||
    (statusLine.length > 12 && statusLine[12] !== " ")
  ) {
    throw invalid("bad status line");
  }
  const code = statusLine.slice(9, 12);
  if (!/^[1-5][0-9][0-9]$/.test(code)) throw invalid("bad status code");
  const status = Number(code);
  const http10 = statusLine[7] === "0";

  const headers: string[] = [];
  let length: number | null = null;
  let chunked = false;
  let otherCoding = false;
  let close = http10;
  let connectionTokens: string[] | null = null;
  let keepAliveMs: number | null = null;
  for (;;) {
    // Each line is read in place: only its name and value become strings.
    const start = eol + 1;
    eol = text.indexOf("\n", start);
    if (eol < 0) throw invalid("unterminated head");
    const end = eol > start && text.charCodeAt(eol - 1) === 13 ? eol - 1 : eol;
    if (end === start) break;
    const first = text.charCodeAt(start);
    if (first === 32 || first === 9) throw invalid("folded header line");
    const colon = text.indexOf(":", start);
    if (colon <= start || colon > end) throw invalid("header line without a name");
    const rawName = text.slice(start, colon);
    if (!TOKEN.test(rawName)) throw invalid("bad header name");
    const name = rawName.toLowerCase();
    const value = trimOws(text, colon + 1, end);
    headers.push(name, value);
    switch (name) {
      case "content-length":
        for (const part of value.includes(",") ? value.split(",") : [value]) {
          const n = part.trim();
          if (!DIGITS.test(n)) throw invalid("bad Content-Length");
          if (length !== null && length !== Number(n)) throw invalid("conflicting Content-Length");
          length = Number(n);
        }
        break;
      case "transfer-encoding":
        for (const part of value.split(",")) {
          const coding = part.trim().toLowerCase();
          if (coding === "") continue;
          // chunked must be the last coding, and only once.
          if (chunked) throw invalid("a coding after chunked");
          if (coding === "chunked") chunked = true;
          else otherCoding = true;
        }
        break;
      case "keep-alive": {
        const timeout = /(?:^|[,;\s])timeout\s*=\s*(\d{1,9})/i.exec(value);
        if (timeout) keepAliveMs = Math.max(0, Number(timeout[1]) * 1000 - 1000);
        break;
      }
      case "connection":
        for (const part of value.split(",")) {
          const token = part.trim().toLowerCase();
          if (token === "") continue;
          if (token === "close") close = true;
          connectionTokens ??= [];
          connectionTokens.push(token);
        }
        break;
    }
  }

  let framing: Framing;
  const hasCoding = chunked || otherCoding;
  if (bodyless || status < 200 || status === 204 || status === 304) framing = NONE;
  // Transfer-Encoding overrides Content-Length (RFC 9112 §6.3); such a response may be an attempt
  // at smuggling, so its connection is not used again.
  else if (hasCoding) framing = chunked && !otherCoding ? CHUNKED : CLOSE;
  else if (length !== null) framing = { kind: "length", length };
  else framing = CLOSE;
  const keepAlive = !close && framing !== CLOSE && !(hasCoding && length !== null) && !(http10 && hasCoding);
  return {
    status,
    statusText: statusLine.length > 13 ? statusLine.slice(13) : "",
    headers,
    size: text.length,
    framing,
    keepAlive,
    connectionTokens,
    keepAliveMs,
  };
}

/** Control characters (HTAB, CR and LF aside), DEL, and a CR not followed by LF. */
function hasForbidden(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x20 && c !== 0x7f) continue;
    if (c === 0x09 || c === 0x0a) continue;
    if (c === 0x0d && text.charCodeAt(i + 1) === 0x0a) continue;
    return true;
  }
  return false;
}

/** The line from `start` to the LF at `eol`, without its CR. */
function line(text: string, start: number, eol: number): string {
  const end = eol > start && text.charCodeAt(eol - 1) === 13 ? eol - 1 : eol;
  return text.slice(start, end);
}

/** A field value, text[from..to), without the spaces and tabs around it (RFC 9110 §5.5). */
function trimOws(l: string, from: number, to: number): string {
  let s = from;
  let e = to;
  while (s < e && (l.charCodeAt(s) === 32 || l.charCodeAt(s) === 9)) s++;
  while (e > s && (l.charCodeAt(e - 1) === 32 || l.charCodeAt(e - 1) === 9)) e--;
  return l.slice(s, e);
}
