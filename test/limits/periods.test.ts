import { describe, expect, test } from "bun:test";
import { isValidTimeZone, type PeriodSpec, periodOf } from "../../src/policies/limits/index.ts";
import { wallTime } from "../../src/policies/limits/periods.ts";
import { prng } from "./helpers.ts";

const at = (iso: string) => Date.parse(iso);
const iso = (t: number) => new Date(t).toISOString();
const spec = (period: PeriodSpec["period"], timezone = "UTC", anchor = 1): PeriodSpec => ({
  period,
  timezone,
  anchor,
});
const range = (s: PeriodSpec, now: string) => {
  const p = periodOf(s, at(now));
  return [iso(p.start), iso(p.end)];
};

describe("calendar periods", () => {
  test("UTC hour, day and month", () => {
    expect(range(spec("hour"), "2026-03-15T10:37:12.345Z")).toEqual([
      "2026-03-15T10:00:00.000Z",
      "2026-03-15T11:00:00.000Z",
    ]);
    expect(range(spec("day"), "2026-03-15T23:59:59.999Z")).toEqual([
      "2026-03-15T00:00:00.000Z",
      "2026-03-16T00:00:00.000Z",
    ]);
    expect(range(spec("month"), "2026-02-28T12:00:00Z")).toEqual([
      "2026-02-01T00:00:00.000Z",
      "2026-03-01T00:00:00.000Z",
    ]);
    expect(range(spec("month"), "2026-12-31T23:59:59.999Z")).toEqual([
      "2026-12-01T00:00:00.000Z",
      "2027-01-01T00:00:00.000Z",
    ]);
    // Boundaries belong to the period they start.
    expect(range(spec("day"), "2026-03-16T00:00:00.000Z")[0]).toBe("2026-03-16T00:00:00.000Z");
  });

  test("a monthly billing anchor starts each period on that day", () => {
    const m15 = spec("month", "UTC", 15);
    expect(range(m15, "2026-03-10T00:00:00Z")).toEqual([
      "2026-02-15T00:00:00.000Z",
      "2026-03-15T00:00:00.000Z",
    ]);
    expect(range(m15, "2026-03-15T00:00:00Z")).toEqual([
      "2026-03-15T00:00:00.000Z",
      "2026-04-15T00:00:00.000Z",
    ]);
    expect(range(m15, "2026-01-03T00:00:00Z")).toEqual([
      "2025-12-15T00:00:00.000Z",
      "2026-01-15T00:00:00.000Z",
    ]);
    expect(range(spec("month", "UTC", 28), "2026-02-27T00:00:00Z")).toEqual([
      "2026-01-28T00:00:00.000Z",
      "2026-02-28T00:00:00.000Z",
    ]);
  });

  test("America/New_York: DST days are 23 and 25 hours; months and anchors follow local midnight", () => {
    const ny = (p: PeriodSpec["period"], anchor = 1) => spec(p, "America/New_York", anchor);
    expect(range(ny("day"), "2026-03-08T12:00:00Z")).toEqual([
      "2026-03-08T05:00:00.000Z",
      "2026-03-09T04:00:00.000Z",
    ]);
    expect(range(ny("day"), "2026-11-01T12:00:00Z")).toEqual([
      "2026-11-01T04:00:00.000Z",
      "2026-11-02T05:00:00.000Z",
    ]);
    // 23:30 local on Nov 1 is already Nov 2 in UTC, still Nov 1 in New York.
    expect(range(ny("day"), "2026-11-02T04:30:00Z")[0]).toBe("2026-11-01T04:00:00.000Z");
    expect(range(ny("month"), "2026-03-20T00:00:00Z")).toEqual([
      "2026-03-01T05:00:00.000Z",
      "2026-04-01T04:00:00.000Z",
    ]);
    expect(range(ny("month", 8), "2026-03-07T12:00:00Z")).toEqual([
      "2026-02-08T05:00:00.000Z",
      "2026-03-08T05:00:00.000Z",
    ]);
    expect(range(ny("month", 8), "2026-03-08T12:00:00Z")).toEqual([
      "2026-03-08T05:00:00.000Z",
      "2026-04-08T04:00:00.000Z",
    ]);
    // The repeated hour of a fall-back is two hours, each an hour long.
    expect(range(ny("hour"), "2026-11-01T05:30:00Z")).toEqual([
      "2026-11-01T05:00:00.000Z",
      "2026-11-01T06:00:00.000Z",
    ]);
    expect(range(ny("hour"), "2026-11-01T06:30:00Z")).toEqual([
      "2026-11-01T06:00:00.000Z",
      "2026-11-01T07:00:00.000Z",
    ]);
  });

  test("half-hour offsets and a DST jump over midnight", () => {
    expect(range(spec("hour", "Asia/Kolkata"), "2026-10-25T12:00:00Z")).toEqual([
      "2026-10-25T11:30:00.000Z",
      "2026-10-25T12:30:00.000Z",
    ]);
    // Santiago skips from 00:00 to 01:00 on 6 Sep 2026: the day starts at the jump.
    expect(range(spec("day", "America/Santiago"), "2026-09-06T12:00:00Z")).toEqual([
      "2026-09-06T04:00:00.000Z",
      "2026-09-07T03:00:00.000Z",
    ]);
  });

  test("in many zones, every period starts at the first instant of its local day or month and ends at the next", () => {
    const zones = [
      "UTC",
      "America/New_York",
      "Europe/London",
      "America/Santiago",
      "Asia/Beirut",
      "America/Havana",
      "Australia/Lord_Howe",
      "Pacific/Chatham",
      "America/St_Johns",
      "Asia/Kolkata",
    ];
    const rnd = prng(11);
    const DAY = 86_400_000;
    const dayKey = (w: number) => Math.floor(w / DAY);
    const monthKey = (w: number, anchor: number) => {
      const d = new Date(w);
      return d.getUTCFullYear() * 12 + d.getUTCMonth() - (d.getUTCDate() < anchor ? 1 : 0);
    };
    let checked = 0;
    for (const tz of zones) {
      // Random instants, plus every 20 minutes around each offset change (where periods go wrong).
      const instants: number[] = [];
      for (let i = 0; i < 150; i++) instants.push(Date.UTC(2025, 0, 1) + Math.floor(rnd() * 2 * 365 * DAY));
      for (let d = Date.UTC(2025, 0, 1); d < Date.UTC(2027, 0, 1); d += DAY) {
        if (wallTime(tz, d) - d === wallTime(tz, d + DAY) - d - DAY) continue;
        for (let t = d - DAY; t < d + 2 * DAY; t += 20 * 60_000) instants.push(t + Math.floor(rnd() * 1000));
      }
      for (const now of instants) {
        const anchor = 1 + Math.floor(rnd() * 28);
        const w = (t: number) => wallTime(tz, t);
        const day = periodOf(spec("day", tz), now);
        const month = periodOf(spec("month", tz, anchor), now);
        const hour = periodOf(spec("hour", tz), now);
        const where = { tz, now: iso(now), anchor };
        expect({ ...where, ok: day.start <= now && now < day.end }).toEqual({ ...where, ok: true });
        expect(dayKey(w(day.start))).toBe(dayKey(w(now)));
        expect(dayKey(w(day.start - 1))).not.toBe(dayKey(w(now)));
        expect(dayKey(w(day.end - 1))).toBe(dayKey(w(now)));
        expect(dayKey(w(day.end))).not.toBe(dayKey(w(now)));
        expect({ ...where, ok: month.start <= now && now < month.end }).toEqual({ ...where, ok: true });
        expect(monthKey(w(month.start), anchor)).toBe(monthKey(w(now), anchor));
        expect(monthKey(w(month.start - 1), anchor)).not.toBe(monthKey(w(now), anchor));
        expect(monthKey(w(month.end), anchor)).not.toBe(monthKey(w(now), anchor));
        expect(hour.end - hour.start).toBe(3_600_000);
        expect(hour.start <= now && now < hour.end).toBe(true);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(4000);
  });

  test("time zone names are checked with Intl", () => {
    expect(isValidTimeZone("America/New_York")).toBe(true);
    expect(isValidTimeZone("Mars/Olympus_Mons")).toBe(false);
  });
});
