/**
 * Usage rows cross to the writer thread as columns: structured-cloning a batch of small objects
 * costs about 1 µs a row on the data plane's thread (and as much again to rebuild them on the
 * other); the strings as one JSON text plus the numbers in one transferred Float64Array cost about
 * 0.3 µs (a cloned array of strings would cost 0.5 µs).
 */
import type { UsageRow } from "./row.ts";

export interface PackedRows {
  count: number;
  /** JSON array of requestId, tenantId, keyId, route, method, path, outcome, wouldRefuse: per row, in this order. */
  text: string;
  /** ts, status, cost, bytesIn, bytesOut, latencyMs, upstreamMs (NaN for null): per row. */
  numbers: Float64Array<ArrayBuffer>;
}

const TEXT = 8;
const NUMBERS = 7;

export function packRows(rows: readonly UsageRow[]): PackedRows {
  const text: (string | null)[] = new Array(rows.length * TEXT);
  const numbers = new Float64Array(rows.length * NUMBERS);
  let t = 0;
  let n = 0;
  for (const r of rows) {
    text[t++] = r.requestId;
    text[t++] = r.tenantId;
    text[t++] = r.keyId;
    text[t++] = r.route;
    text[t++] = r.method;
    text[t++] = r.path;
    text[t++] = r.outcome;
    text[t++] = r.wouldRefuse;
    numbers[n++] = r.ts;
    numbers[n++] = r.status;
    numbers[n++] = r.cost;
    numbers[n++] = r.bytesIn;
    numbers[n++] = r.bytesOut;
    numbers[n++] = r.latencyMs;
    numbers[n++] = r.upstreamMs ?? Number.NaN;
  }
  return { count: rows.length, text: JSON.stringify(text), numbers };
}

export function unpackRows(p: PackedRows): UsageRow[] {
  const rows: UsageRow[] = new Array(p.count);
  const text = JSON.parse(p.text) as (string | null)[];
  const { numbers } = p;
  for (let i = 0, t = 0, n = 0; i < p.count; i++, t += TEXT, n += NUMBERS) {
    const upstreamMs = numbers[n + 6]!;
    rows[i] = {
      ts: numbers[n]!,
      requestId: text[t]!,
      tenantId: text[t + 1]!,
      keyId: text[t + 2]!,
      route: text[t + 3]!,
      method: text[t + 4]!,
      path: text[t + 5]!,
      status: numbers[n + 1]!,
      outcome: text[t + 6]!,
      wouldRefuse: text[t + 7]!,
      cost: numbers[n + 2]!,
      bytesIn: numbers[n + 3]!,
      bytesOut: numbers[n + 4]!,
      latencyMs: numbers[n + 5]!,
      upstreamMs: Number.isNaN(upstreamMs) ? null : upstreamMs,
    };
  }
  return rows;
}
