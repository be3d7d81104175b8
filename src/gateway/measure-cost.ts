/**
 * A route's post-paid cost, read from its response (`costFrom`): a header, or a number in the JSON
 * body such as `usage.total_tokens`.
 *
 * A body is never held back for measuring: the proxy relays it as usual and this keeps a copy of its
 * bytes, up to the route's `maxBytes`, which is parsed once the body has ended. A body longer than
 * that, one that breaks off, one that is not JSON, or a compressed one that inflates past the bound
 * is not measured (the route's fallback applies). Compressed bodies (gzip, deflate, br, zstd) are
 * inflated for reading only; the client gets them as they came.
 */
import type { CostSource } from "./snapshot.ts";

type Zlib = typeof import("node:zlib");
// Loaded on first use: node:zlib brings node:stream with it, a start-up cost every gateway would pay
// for the few routes that measure compressed responses.
let zlibModule: Zlib | undefined;
const zlib = (): Zlib => {
  zlibModule ??= require("node:zlib") as Zlib;
  return zlibModule;
};

type JsonSource = Extract<CostSource, { kind: "json" }>;

/** A header's value as cost units: a non-negative decimal number, rounded up; else undefined. */
export function costFromHeader(value: string | null): number | undefined {
  if (value === null || !/^[0-9]+(\.[0-9]+)?$/.test(value)) return undefined;
  return wholeUnits(Number(value));
}

/** The number at `source.path` in a JSON body, as cost units; undefined when missing or malformed. */
export function costFromJson(
  body: Uint8Array,
  encoding: string | null,
  source: JsonSource,
): number | undefined {
  const bytes = inflate(body, encoding, source.maxBytes);
  if (bytes === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return undefined;
  }
  for (const step of source.path) {
    if (Array.isArray(value)) {
      value = /^(0|[1-9][0-9]*)$/.test(step) ? value[Number(step)] : undefined;
    } else if (typeof value === "object" && value !== null && Object.hasOwn(value, step)) {
      value = (value as Record<string, unknown>)[step];
    } else return undefined;
  }
  return typeof value === "number" ? wholeUnits(value) : undefined;
}

/** Negative, non-finite and too large values are malformed; fractions round up. */
function wholeUnits(n: number): number | undefined {
  return Number.isFinite(n) && n >= 0 && n <= Number.MAX_SAFE_INTEGER ? Math.ceil(n) : undefined;
}

/** The body as sent, inflated when the response says it is compressed, within `max` bytes. */
function inflate(body: Uint8Array, encoding: string | null, max: number): Uint8Array | undefined {
  const coding = encoding?.trim().toLowerCase() ?? "identity";
  const options = { maxOutputLength: max };
  try {
    switch (coding) {
      case "identity":
      case "":
        return body;
      case "gzip":
      case "x-gzip":
        return zlib().gunzipSync(body, options);
      case "deflate":
        return zlib().inflateSync(body, options);
      case "br":
        return zlib().brotliDecompressSync(body, options);
      case "zstd":
        return zlib().zstdDecompressSync(body, options);
      default:
        return undefined; // several codings, or one we cannot read
    }
  } catch {
    return undefined;
  }
}

/**
 * Copies of a streamed body's chunks, up to `max` bytes in all; past that it gives up and frees them.
 * Chunks are copied because the relay hands the originals on to the client.
 */
export class BodyCapture {
  private chunks: Uint8Array[] | null = [];
  private size = 0;

  constructor(private readonly max: number) {}

  add(chunk: Uint8Array): void {
    if (this.chunks === null) return;
    this.size += chunk.byteLength;
    if (this.size > this.max) this.chunks = null;
    else this.chunks.push(chunk.slice());
  }

  /** The whole body, or undefined when it was longer than `max`. */
  bytes(): Uint8Array | undefined {
    if (this.chunks === null) return undefined;
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.byteLength;
    }
    return out;
  }
}
