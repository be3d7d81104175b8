/**
 * Calendar periods (hour, day, month with a billing anchor) in an IANA time zone, as [start, end)
 * epoch ms. Boundaries are found with Intl, so DST days are 23 or 25 hours long where the zone says so.
 * This runs once per period per quota (callers cache the result), never per request.
 */

export interface Period {
  readonly start: number;
  readonly end: number;
}

export interface PeriodSpec {
  readonly period: "hour" | "day" | "month";
  /** Day of the month (1..28) a monthly period starts on. */
  readonly anchor: number;
  readonly timezone: string;
}

const HOUR = 3_600_000;
const DAY = 86_400_000;

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** True when Intl knows the zone; the config loader can use this to reject a bad `timezone`. */
export function isValidTimeZone(timeZone: string): boolean {
  try {
    formatter(timeZone);
    return true;
  } catch {
    return false;
  }
}

const mod = (a: number, m: number) => ((a % m) + m) % m;

/** The local wall-clock time at instant `t` in `timeZone`, encoded as if that wall time were UTC. */
export function wallTime(timeZone: string, t: number): number {
  if (timeZone === "UTC") return t;
  let y = 0;
  let mo = 1;
  let d = 1;
  let h = 0;
  let mi = 0;
  let s = 0;
  for (const p of formatter(timeZone).formatToParts(t)) {
    if (p.type === "year") y = Number(p.value);
    else if (p.type === "month") mo = Number(p.value);
    else if (p.type === "day") d = Number(p.value);
    else if (p.type === "hour") h = Number(p.value);
    else if (p.type === "minute") mi = Number(p.value);
    else if (p.type === "second") s = Number(p.value);
  }
  return Date.UTC(y, mo - 1, d, h, mi, s, mod(t, 1000));
}

const offsetAt = (timeZone: string, t: number) => wallTime(timeZone, t) - t;

/**
 * The first instant after `after` at which the zone's clock shows `wall` (or, when `wall` falls in a
 * DST gap and is never shown, the instant the clock jumps over it: the new day or month starts then).
 * When `wall` is shown twice (a fall-back), the earlier instant wins unless it is not after `after`.
 */
function instantOf(timeZone: string, wall: number, after = Number.NEGATIVE_INFINITY): number {
  const before = offsetAt(timeZone, wall - DAY);
  const later = offsetAt(timeZone, wall + DAY);
  let best = Number.POSITIVE_INFINITY;
  for (const c of before === later ? [wall - before] : [wall - before, wall - later]) {
    if (c > after && c < best && wallTime(timeZone, c) === wall) best = c;
  }
  if (best !== Number.POSITIVE_INFINITY) return best;
  // In a gap: wall - later still has the old offset, wall - before already the new one.
  let lo = wall - later;
  let hi = wall - before;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (offsetAt(timeZone, mid) === later) hi = mid;
    else lo = mid;
  }
  return hi;
}

/** The period of `spec` that contains instant `now`. */
export function periodOf(spec: PeriodSpec, now: number): Period {
  const tz = spec.timezone;
  const wall = wallTime(tz, now);
  if (spec.period === "hour") {
    // Local hours start at local :00; with whole-hour offsets this is the UTC hour.
    const start = now - mod(wall, HOUR);
    return { start, end: start + HOUR };
  }
  let startWall: number;
  let endWall: number;
  if (spec.period === "day") {
    startWall = wall - mod(wall, DAY);
    endWall = startWall + DAY;
  } else {
    const date = new Date(wall);
    const y = date.getUTCFullYear();
    const m = date.getUTCMonth();
    const first = date.getUTCDate() >= spec.anchor ? m : m - 1;
    startWall = Date.UTC(y, first, spec.anchor);
    endWall = Date.UTC(y, first + 1, spec.anchor);
  }
  if (tz === "UTC") return { start: startWall, end: endWall };
  return { start: instantOf(tz, startWall), end: instantOf(tz, endWall, now) };
}
