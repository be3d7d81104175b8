import { describe, expect, test } from "bun:test";
import { packRows, unpackRows } from "../../src/usage/packed.ts";
import type { UsageRow } from "../../src/usage/row.ts";
import { row as usageRow } from "./helpers.ts";

/** Fractional timings and a full-length request id: what the packed form must carry exactly. */
const row = (over: Partial<UsageRow> = {}): UsageRow =>
  usageRow({
    requestId: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
    latencyMs: 1.25,
    upstreamMs: 0.875,
    ...over,
  });

describe("packed usage rows", () => {
  test("round-trip every field, nulls included", () => {
    const rows = [
      row(),
      row({
        tenantId: null,
        keyId: null,
        route: null,
        upstreamMs: null,
        status: 401,
        outcome: "rejected:unauthorized",
        cost: 0,
      }),
      row({ path: "", method: "PATCH", upstreamMs: 0, latencyMs: 0 }),
    ];
    expect(unpackRows(packRows(rows))).toEqual(rows);
  });

  test("an empty batch", () => {
    expect(unpackRows(packRows([]))).toEqual([]);
  });

  test("survives postMessage with the numbers transferred", async () => {
    const rows = [row(), row({ upstreamMs: null })];
    const packed = packRows(rows);
    const { port1, port2 } = new MessageChannel();
    const received = new Promise<unknown>((resolve) => {
      port2.onmessage = (e) => resolve(e.data);
    });
    port1.postMessage(packed, [packed.numbers.buffer]);
    const copy = (await received) as Parameters<typeof unpackRows>[0];
    port1.close();
    port2.close();
    expect(unpackRows(copy)).toEqual(rows);
  });
});
