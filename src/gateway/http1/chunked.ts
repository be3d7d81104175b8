/**
 * Decodes a chunked response body (RFC 9112 §7.1) as it arrives, in pieces split anywhere. Chunk
 * extensions and trailer fields are read past (bounded), never passed on. Sizes are hex digits only,
 * at most 13 of them, so a size can never overflow into a different number.
 */
import { MalformedResponse } from "./response-head.ts";

/** Longest chunk-size line (size and extensions) and the most trailer bytes accepted. */
const MAX_LINE = 4096;
const MAX_TRAILERS = 16 * 1024;

enum State {
  Size,
  Data,
  DataEnd,
  Trailers,
  Done,
}

const invalid = (why: string) =>
  new MalformedResponse("HPE_INVALID_RESPONSE", `invalid chunked body: ${why}`);

export class ChunkedDecoder {
  private state = State.Size;
  private remaining = 0;
  /** The part of a size or trailer line received so far. */
  private line = "";
  private trailerBytes = 0;

  get done(): boolean {
    return this.state === State.Done;
  }

  /**
   * Feeds `buf[from..]`; passes each piece of body data to `out` (views of `buf`). Returns the index
   * just after the body's end once it is done, else buf.length.
   */
  push(buf: Uint8Array, from: number, out: (data: Uint8Array) => void): number {
    let i = from;
    while (i < buf.length) {
      switch (this.state) {
        case State.Size:
        case State.Trailers: {
          const lf = buf.indexOf(10, i);
          const end = lf < 0 ? buf.length : lf;
          this.line += latin1(buf, i, end);
          if (this.state === State.Trailers) this.trailerBytes += end - i + 1;
          if (this.line.length > (this.state === State.Size ? MAX_LINE : MAX_TRAILERS)) {
            throw invalid("line too long");
          }
          if (this.state === State.Trailers && this.trailerBytes > MAX_TRAILERS)
            throw invalid("trailers too long");
          if (lf < 0) return buf.length;
          i = lf + 1;
          const l = this.line.endsWith("\r") ? this.line.slice(0, -1) : this.line;
          this.line = "";
          if (this.state === State.Size) this.sizeLine(l);
          else if (l === "") {
            this.state = State.Done;
            return i;
          } else if (l.includes("\r")) throw invalid("bare CR in a trailer");
          break;
        }
        case State.Data: {
          const n = Math.min(this.remaining, buf.length - i);
          out(buf.subarray(i, i + n));
          i += n;
          this.remaining -= n;
          if (this.remaining === 0) this.state = State.DataEnd;
          break;
        }
        case State.DataEnd: {
          // CRLF (or a bare LF) after the data.
          const b = buf[i]!;
          if (b === 13 && this.line === "") {
            this.line = "\r";
            i++;
          } else if (b === 10) {
            this.line = "";
            this.state = State.Size;
            i++;
          } else throw invalid("data longer than its chunk size");
          break;
        }
        case State.Done:
          return i;
      }
    }
    return i;
  }

  private sizeLine(l: string): void {
    let end = 0;
    while (end < l.length && isHex(l.charCodeAt(end))) end++;
    if (end === 0 || end > 13) throw invalid("bad chunk size");
    const rest = l.slice(end);
    // Extensions follow a `;`, optionally after spaces; nothing else may.
    if (rest !== "" && !/^[\t ]*;[^\r]*$/.test(rest)) throw invalid("bad chunk size line");
    const size = Number.parseInt(l.slice(0, end), 16);
    if (size === 0) this.state = State.Trailers;
    else {
      this.remaining = size;
      this.state = State.Data;
    }
  }
}

const isHex = (c: number) => (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);

function latin1(buf: Uint8Array, start: number, end: number): string {
  return Buffer.from(buf.buffer, buf.byteOffset + start, end - start).toString("latin1");
}
