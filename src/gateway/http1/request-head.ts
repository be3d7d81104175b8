/**
 * The request head gatehouse writes upstream. Its parts are already safe to put on a line: the
 * method and the client's headers passed Bun's parser, the target is the canonical path and a
 * serialized query, the gateway's own values were checked (headers.ts) and injected ones were
 * validated with the config. What is left is the encoding: header values are Latin-1 (as in a
 * Headers object), so a head with other characters is refused rather than sent as UTF-8.
 */

/** How the body is framed on the wire. */
export type BodyFraming = "none" | "length" | "chunked";

/** Methods whose requests carry a body by definition; without one they say so with a zero length. */
const EXPECTS_BODY = new Set(["POST", "PUT", "PATCH"]);

export function requestHead(
  method: string,
  target: string,
  host: string,
  fields: readonly string[],
  framing: BodyFraming,
): string {
  let head = `${method} ${target} HTTP/1.1\r\nhost: ${host}\r\n`;
  for (let i = 0; i < fields.length; i += 2) head += `${fields[i]}: ${fields[i + 1]}\r\n`;
  if (framing === "chunked") head += "transfer-encoding: chunked\r\n";
  else if (framing === "none" && EXPECTS_BODY.has(method)) head += "content-length: 0\r\n";
  return `${head}\r\n`;
}

/** The head as bytes: an ASCII string as it is, Latin-1 byte for byte; anything else is an error. */
export function encodeHead(head: string): string | Buffer {
  if (Buffer.byteLength(head) === head.length) return head;
  for (let i = 0; i < head.length; i++) {
    if (head.charCodeAt(i) > 0xff) throw new TypeError("a header value is not Latin-1 text");
  }
  return Buffer.from(head, "latin1");
}
