import { describe, expect, test } from "bun:test";
import { packRows, unpackRows } from "../../src/usage/packed.ts";
import type { UsageRow } from "../../src/usage/row.ts";

const row = (over: Partial<UsageRow> = {}): UsageRow => ({
  ts: 1_780_000_000_123,
  requestId: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
  tenantId: "acme",
  keyId: "acme-key",
  route: "* /v1/**",
  method: "GET",
  path: "/v1/items",
  status: 200,
  outcome: "ok",
  cost: 3,
  bytesIn: 12,
  bytesOut: 3456,
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
