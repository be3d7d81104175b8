/** The HTTP/1.1 client's parsers on their own: heads and chunked bodies, however they are split. */
import { describe, expect, test } from "bun:test";
import { ChunkedDecoder } from "../../src/gateway/http1/chunked.ts";
import { headEnd, parseResponseHead } from "../../src/gateway/http1/response-head.ts";
import { prng } from "../../src/lib/prng.ts";

const bytes = (s: string) => Buffer.from(s, "latin1");

/** Decodes `wire` fed in the pieces `cuts` make; returns the body and where the decoder stopped. */
function decode(wire: Buffer, cuts: number[]): { body: string; end: number; done: boolean } {
  const d = new ChunkedDecoder();
  let body = "";
  let from = 0;
  let end = -1;
  for (const cut of [...cuts, wire.length]) {
    const piece = wire.subarray(from, cut);
    const at = d.push(piece, 0, (data) => {
      body += Buffer.from(data).toString("latin1");
    });
    if (d.done && end < 0) end = from + at;
    from = cut;
    if (d.done) break;
  }
  return { body, end, done: d.done };
}

describe("chunked bodies", () => {
  const wire = bytes(
    "4;name=value\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\n\r\nNEXT",
  );
  const expected = "Wikipedia in\r\n\r\nchunks.";

  test("decode the same whatever two places the bytes are split at", () => {
    for (let i = 0; i <= wire.length; i++) {
      for (let j = i; j <= wire.length; j++) {
        const got = decode(wire, [i, j]);
        expect(got.body).toBe(expected);
        expect(got.done).toBe(true);
        // Stops exactly before what follows the body.
        expect(got.end).toBe(wire.length - 4);
      }
    }
  });

  test("decode random bodies in random pieces", () => {
    const rand = prng(7);
    for (let n = 0; n < 200; n++) {
      const chunks = Array.from({ length: 1 + Math.floor(rand() * 5) }, () =>
        "x"
          .repeat(1 + Math.floor(rand() * 300))
          .replace(/x/g, () => String.fromCharCode(Math.floor(rand() * 256))),
      );
      const encoded = bytes(`${chunks.map((c) => `${c.length.toString(16)}\r\n${c}\r\n`).join("")}0\r\n\r\n`);
      const cuts = Array.from({ length: 4 }, () => Math.floor(rand() * encoded.length)).sort((a, b) => a - b);
      expect(decode(encoded, cuts).body).toBe(chunks.join(""));
    }
  });

  test.each([
    ["no size", "\r\nabc\r\n0\r\n\r\n"],
    ["a size too long to be exact", "10000000000000\r\n"],
    ["a sign", "+5\r\nhello\r\n0\r\n\r\n"],
    ["junk after the size", "5 x\r\nhello\r\n0\r\n\r\n"],
    ["more data than the size", "3\r\nhello\r\n0\r\n\r\n"],
  ])("refuse %s", (_, text) => {
    expect(() => decode(bytes(text), [])).toThrow("invalid chunked body");
  });
});

describe("response heads", () => {
  test("end at the first empty line, with CRLF or bare LF", () => {
    expect(headEnd(bytes("HTTP/1.1 200 OK\r\na: b\r\n\r\nbody"))).toBe(25);
    expect(headEnd(bytes("HTTP/1.1 200 OK\na: b\n\nbody"))).toBe(22);
    expect(headEnd(bytes("HTTP/1.1 200 OK\r\na: b\r\n"))).toBe(-1);
  });

  test("keep names in lower case, values trimmed, repeats in order", () => {
    const h = parseResponseHead(
      "HTTP/1.1 201 Created\r\nSet-Cookie: a=1\r\nX-A:\t 2 \r\nset-cookie: b=2\r\n\r\n",
      false,
    );
    expect(h).toMatchObject({ status: 201, statusText: "Created" });
    expect(h.headers).toEqual(["set-cookie", "a=1", "x-a", "2", "set-cookie", "b=2"]);
    // No length and no chunked coding: the body lasts until the upstream closes.
    expect(h.framing).toEqual({ kind: "close" });
    expect(h.keepAlive).toBe(false);
  });

  test("frame by chunked over Content-Length, and then do not reuse the connection", () => {
    const h = parseResponseHead(
      "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n",
      false,
    );
    expect(h.framing).toEqual({ kind: "chunked" });
    expect(h.keepAlive).toBe(false);
  });

  test("accept a repeated identical Content-Length", () => {
    const h = parseResponseHead(
      "HTTP/1.1 200 OK\r\ncontent-length: 5, 5\r\ncontent-length: 5\r\n\r\n",
      false,
    );
    expect(h.framing).toEqual({ kind: "length", length: 5 });
  });

  test("list the Connection header's tokens", () => {
    const h = parseResponseHead(
      "HTTP/1.1 200 OK\r\nconnection: X-Hop, close\r\ncontent-length: 0\r\n\r\n",
      false,
    );
    expect(h.connectionTokens).toEqual(["x-hop", "close"]);
    expect(h.keepAlive).toBe(false);
  });
});
