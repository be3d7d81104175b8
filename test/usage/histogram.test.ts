import { describe, expect, test } from "bun:test";
import {
  addEncoded,
  BUCKETS,
  bucketMiddle,
  bucketOf,
  emptyHistogram,
  encodeHistogram,
  PERCENTILE_ERROR,
  percentile,
} from "../../src/usage/histogram.ts";
import { exactPercentile, prng } from "./helpers.ts";

describe("histogram", () => {
  test("buckets are four per doubling, starting at 1 ms", () => {
    expect(bucketOf(0)).toBe(0);
    expect(bucketOf(0.999)).toBe(0);
    expect(bucketOf(1)).toBe(1);
    expect(bucketOf(2)).toBe(5);
    expect(bucketOf(1024)).toBe(41);
    expect(bucketOf(1023.9)).toBe(40);
    expect(bucketOf(Number.NaN)).toBe(0);
    expect(bucketOf(1e12)).toBe(BUCKETS - 1);
  });

  test("encoding round-trips counts, including ones past 2^32", () => {
    const h = emptyHistogram();
    h[0] = 1;
    h[7] = 127;
    h[8] = 128;
    h[40] = 2 ** 33 + 5;
    h[BUCKETS - 1] = 3;
    const back = emptyHistogram();
    addEncoded(back, encodeHistogram(h));
    addEncoded(back, encodeHistogram(h));
    expect(Array.from(back)).toEqual(Array.from(h, (c) => c * 2));
    expect(encodeHistogram(emptyHistogram()).length).toBe(0);
  });

  test("percentiles match the exact nearest-rank value's bucket, within the stated error", () => {
    const rand = prng(7);
    for (let trial = 0; trial < 50; trial++) {
      const n = 1 + Math.floor(rand() * 2000);
      const values = Array.from({ length: n }, () => Math.exp(rand() * 12) * (rand() < 0.5 ? 1 : 0.37));
      const h = emptyHistogram();
      for (const v of values) h[bucketOf(v)]! += 1;
      const min = Math.min(...values);
      const max = Math.max(...values);
      for (const p of [50, 90, 99, 100]) {
        const exact = exactPercentile(values, p);
        const got = percentile(h, p, min, max)!;
        expect(got).toBe(Math.min(max, Math.max(min, bucketMiddle(bucketOf(exact)))));
        if (exact >= 1) expect(Math.abs(got - exact) / exact).toBeLessThanOrEqual(PERCENTILE_ERROR + 1e-12);
      }
    }
  });

  test("a group whose values are all equal reports that value exactly", () => {
    const h = emptyHistogram();
    h[bucketOf(3)] = 10;
    expect(percentile(h, 50, 3, 3)).toBe(3);
    expect(percentile(emptyHistogram(), 50, 0, 0)).toBeNull();
  });
});
