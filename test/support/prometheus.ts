/**
 * A strict reader of the Prometheus text format (0.0.4): every sample must belong to a family
 * declared with HELP and TYPE before it, names and labels must be valid, values must be numbers,
 * counters must end in _total and histograms must be cumulative and end at +Inf = _count.
 * Throws on the first violation, naming the line.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  help: string;
  type: "counter" | "gauge" | "histogram" | "summary" | "untyped";
  samples: Sample[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"]);

export function parsePrometheus(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const help = new Map<string, string>();
  const fail = (n: number, line: string, why: string): never => {
    throw new Error(`line ${n + 1}: ${why}: ${line}`);
  };
  text.split("\n").forEach((line, n) => {
    if (line === "") return;
    if (line.startsWith("# HELP ")) {
      const [, name, doc] = /^# HELP (\S+) (.*)$/.exec(line) ?? fail(n, line, "malformed HELP");
      if (!METRIC_NAME.test(name!)) fail(n, line, "invalid metric name");
      if (help.has(name!)) fail(n, line, "HELP repeated");
      help.set(name!, doc!);
      return;
    }
    if (line.startsWith("# TYPE ")) {
      const [, name, type] = /^# TYPE (\S+) (\S+)$/.exec(line) ?? fail(n, line, "malformed TYPE");
      if (!TYPES.has(type!)) fail(n, line, "unknown type");
      if (!help.has(name!)) fail(n, line, "TYPE before HELP");
      if (families.has(name!)) fail(n, line, "TYPE repeated");
      families.set(name!, { name: name!, help: help.get(name!)!, type: type as Family["type"], samples: [] });
      return;
    }
    if (line.startsWith("#")) return;
    const sample = parseSample(line) ?? fail(n, line, "malformed sample");
    const family = familyOf(sample.name, families) ?? fail(n, line, "sample without HELP and TYPE");
    family.samples.push(sample);
  });
  for (const f of families.values()) checkFamily(f);
  return families;
}

function parseSample(line: string): Sample | null {
  const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
  if (!m) return null;
  const labels: Record<string, string> = {};
  let rest = m[3] ?? "";
  while (rest !== "") {
    const l = /^([^=]+)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)/.exec(rest);
    if (!l || !LABEL_NAME.test(l[1]!) || l[1]! in labels) return null;
    labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    rest = rest.slice(l[0].length);
  }
  const raw = m[4]!;
  const value = raw === "+Inf" ? Infinity : raw === "-Inf" ? -Infinity : raw === "NaN" ? NaN : Number(raw);
  if (raw !== "NaN" && Number.isNaN(value)) return null;
  return { name: m[1]!, labels, value };
}

function familyOf(name: string, families: Map<string, Family>): Family | undefined {
  const direct = families.get(name);
  if (direct) return direct;
  const base = name.replace(/_(bucket|sum|count)$/, "");
  const f = families.get(base);
  return f && (f.type === "histogram" || f.type === "summary") ? f : undefined;
}

function checkFamily(f: Family): void {
  if (f.type === "counter" && !f.name.endsWith("_total"))
    throw new Error(`counter ${f.name} must end in _total`);
  if (f.type !== "histogram") return;
  const series = new Map<string, Sample[]>();
  for (const s of f.samples) {
    if (!s.name.endsWith("_bucket")) continue;
    const { le, ...rest } = s.labels;
    if (le === undefined) throw new Error(`${f.name}: bucket without le`);
    const id = JSON.stringify(rest);
    series.set(id, [...(series.get(id) ?? []), s]);
  }
  for (const [id, buckets] of series) {
    let last = -1;
    for (const b of buckets) {
      if (b.value < last) throw new Error(`${f.name}${id}: buckets not cumulative`);
      last = b.value;
    }
    const inf = buckets.at(-1)!;
    const count = f.samples.find((s) => s.name === `${f.name}_count` && JSON.stringify(s.labels) === id);
    if (inf.labels.le !== "+Inf" || count?.value !== inf.value)
      throw new Error(`${f.name}${id}: the last bucket must be +Inf and equal _count`);
  }
}

/** The value of the one sample of `name` whose labels include `labels`; undefined when none. */
export function sampleValue(
  families: Map<string, Family>,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const f of families.values()) {
    for (const s of f.samples) {
      if (s.name !== name) continue;
      if (Object.entries(labels).every(([k, v]) => s.labels[k] === v)) return s.value;
    }
  }
  return undefined;
}
