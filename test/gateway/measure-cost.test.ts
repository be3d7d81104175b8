/** Reading a cost from a response, and what a request finally costs and is billed. */
import { describe, expect, test } from "bun:test";
import zlib from "node:zlib";
import { type FinalCost, finalCost } from "../../src/gateway/final-cost.ts";
import { BodyCapture, costFromHeader, costFromJson } from "../../src/gateway/measure-cost.ts";
import type { CompiledRoute, TenantView } from "../../src/gateway/snapshot.ts";

const source = (path: string, maxBytes = 1024) =>
  ({ kind: "json", path: path.split("."), maxBytes, fallback: 1 }) as const;
const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

describe("costFromJson", () => {
  test("reads a number at a dotted path; a number indexes a list; fractions round up", () => {
    expect(costFromJson(json({ usage: { total_tokens: 42 } }), null, source("usage.total_tokens"))).toBe(42);
    expect(costFromJson(json({ data: [{ n: 1 }, { n: 7 }] }), null, source("data.1.n"))).toBe(7);
    expect(costFromJson(json({ u: 2.1 }), null, source("u"))).toBe(3);
    expect(costFromJson(json({ u: 0 }), null, source("u"))).toBe(0);
  });

  test.each([
    ["missing field", { usage: {} }],
    ["a string", { usage: { total_tokens: "42" } }],
    ["negative", { usage: { total_tokens: -1 } }],
    ["null", { usage: { total_tokens: null } }],
    ["an object", { usage: { total_tokens: { n: 1 } } }],
    ["too large to count exactly", { usage: { total_tokens: 2 ** 60 } }],
    ["a list where an object is expected", { usage: [42] }],
  ])("%s is undefined", (_, body) => {
    expect(costFromJson(json(body), null, source("usage.total_tokens"))).toBeUndefined();
  });

  test("inherited names are not fields; malformed JSON and unknown codings are undefined", () => {
    expect(costFromJson(json({}), null, source("constructor.length"))).toBeUndefined();
    expect(costFromJson(json({ a: [1] }), null, source("a.length"))).toBeUndefined();
    expect(costFromJson(new TextEncoder().encode('{"u": 4'), null, source("u"))).toBeUndefined();
    expect(costFromJson(json({ u: 4 }), "compress", source("u"))).toBeUndefined();
    expect(costFromJson(json({ u: 4 }), "gzip, br", source("u"))).toBeUndefined();
  });

  test("compressed bodies are inflated, within the bound", () => {
    const body = json({ u: 9 });
    expect(costFromJson(zlib.gzipSync(body), "gzip", source("u"))).toBe(9);
    expect(costFromJson(zlib.deflateSync(body), "deflate", source("u"))).toBe(9);
    expect(costFromJson(zlib.brotliCompressSync(body), "br", source("u"))).toBe(9);
    // A small body that inflates past maxBytes is not read (a zip bomb stays small in memory).
    const padded = json({ u: 9, pad: "x".repeat(100_000) });
    expect(costFromJson(zlib.gzipSync(padded), "gzip", source("u", 10_000))).toBeUndefined();
  });
});

describe("costFromHeader", () => {
  test("a non-negative decimal number, rounded up; anything else is undefined", () => {
    expect(costFromHeader("17")).toBe(17);
    expect(costFromHeader("0")).toBe(0);
    expect(costFromHeader("1.5")).toBe(2);
    for (const v of [null, "", "-3", "1e3", "12 units", "5, 7", "0x10", "Infinity"]) {
      expect(costFromHeader(v)).toBeUndefined();
    }
  });
});

describe("BodyCapture", () => {
  test("keeps copies up to the bound, then gives up", () => {
    const capture = new BodyCapture(5);
    const chunk = new Uint8Array([1, 2, 3]);
    capture.add(chunk);
    chunk[0] = 9; // the relay hands the original on; the copy must not change with it
    expect([...capture.bytes()!]).toEqual([1, 2, 3]);
    capture.add(new Uint8Array([4, 5, 6]));
    expect(capture.bytes()).toBeUndefined();
  });
});

describe("finalCost", () => {
  const route = (costFrom: unknown) => ({ costFrom }) as CompiledRoute;
  const header = { kind: "header", name: "x-units", fallback: 4 };
  const of = (
    over: { cost?: number; costFrom?: unknown; billFailures?: boolean },
    ended: { status?: number; outcome?: string; measured?: number },
  ): FinalCost => {
    const into = { cost: -1, billed: -1 };
    finalCost(
      {
        cost: over.cost ?? 2,
        route: route(over.costFrom ?? null),
        tenant: { billFailures: over.billFailures ?? false } as TenantView,
      },
      { status: ended.status ?? 200, outcome: ended.outcome ?? "ok", measured: ended.measured },
      into,
    );
    return into;
  };

  test("the route's cost, or the measured one when higher, or the fallback when none was read", () => {
    expect(of({}, {})).toEqual({ cost: 2, billed: 2 });
    expect(of({}, { measured: 40 })).toEqual({ cost: 2, billed: 2 }); // no costFrom: not read
    expect(of({ costFrom: header }, { measured: 40 })).toEqual({ cost: 40, billed: 40 });
    expect(of({ costFrom: header }, { measured: 1 })).toEqual({ cost: 2, billed: 2 });
    expect(of({ costFrom: header }, {})).toEqual({ cost: 4, billed: 4 });
  });

  test("refusals cost nothing; failures are not billed unless the plan says so", () => {
    expect(of({}, { status: 429, outcome: "rejected:rate_limited" })).toEqual({ cost: 0, billed: 0 });
    for (const ended of [
      { status: 502, outcome: "upstream_error" },
      { status: 504, outcome: "upstream_error" },
      { status: 503 },
      { status: 500 },
      { status: 200, outcome: "upstream_error" }, // a body cut off
    ]) {
      expect(of({}, ended)).toEqual({ cost: 2, billed: 0 });
      expect(of({ billFailures: true }, ended)).toEqual({ cost: 2, billed: 2 });
    }
    // The client leaving, or the upstream's 4xx, is billed.
    expect(of({}, { status: 499, outcome: "client_aborted" })).toEqual({ cost: 2, billed: 2 });
    expect(of({}, { status: 404 })).toEqual({ cost: 2, billed: 2 });
  });
});
