/**
 * The parts a tenant's page is made of, shared by the operator's dashboard and the tenant's portal:
 * keys (with their one-time secrets), limits, quota burn-down, usage charts and recent refusals. Each
 * reads and changes its data through a TenantSource, which each surface implements over its own API.
 */
import type { ServerClock } from "./api.ts";
import { chart } from "./charts.ts";
import { actionButton, append, confirmButton, h, replace, section, showError, table } from "./dom.ts";
import { num, percent, when } from "./format.ts";

export interface KeyRow {
  id: string;
  name: string | null;
  prefix: string;
  last4: string;
  createdAt: string;
  lastUsedAt: string | null;
  expiresAt: string | null;
  disabled: boolean;
  previousSecretValidUntil: string | null;
  /** Whether this surface may change it (keys from the config file are read-only). */
  editable: boolean;
}

export interface UsageGroup {
  group: string | null;
  requests: number;
  errors: number;
  costUnits: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number } | null;
}

export interface UsageReport {
  groups: UsageGroup[];
  total: UsageGroup;
}

export interface QuotaUse {
  name: string;
  limit: number;
  used: number;
  remaining: number;
  period: string;
  periodStart: string;
  resetsAt: string;
  origin: string;
}

export interface PolicyItem {
  name?: string;
  limit?: number;
  window?: string;
  by?: string;
  period?: string;
  effect?: string;
  pattern?: string;
  origin: string;
  source?: string;
}

export interface Policy {
  plan: string;
  limits: PolicyItem[];
  quotas: PolicyItem[];
  rules?: PolicyItem[];
  concurrency: { limit: number; origin: string; source?: string } | null;
}

export interface Refusal {
  at: string;
  requestId: string;
  keyId: string | null;
  method: string;
  path: string;
  status: number;
  code: string;
}

export interface TenantSource {
  keys(): Promise<KeyRow[]>;
  createKey(name: string): Promise<{ key: KeyRow; secret: string }>;
  rotate(id: string, gracePeriod: string): Promise<{ key: KeyRow; secret: string }>;
  endGrace(id: string): Promise<unknown>;
  setDisabled(id: string, disabled: boolean): Promise<unknown>;
  revoke(id: string): Promise<unknown>;
  usage(from: number, to: number, groupBy: string): Promise<UsageReport>;
  quota(): Promise<{ quotas: QuotaUse[] }>;
  policy(): Promise<Policy>;
  refusals(from: number, to: number): Promise<{ items: Refusal[] }>;
}

// ---------------------------------------------------------------------------------------------- keys

export function keysSection(source: TenantSource, options: { canCreate: () => string | null }) {
  const { root, body } = section("API keys", "keys");
  const secretBox = h("div", { class: "secret-slot" });
  const list = h("div");
  const refresh = async () => {
    const keys = await source.keys();
    const blocked = options.canCreate();
    replace(list, keyTable(keys), blocked ? h("p", { class: "note" }, blocked) : null);
    createButton.disabled = blocked !== null;
  };
  const showSecret = (what: string, key: KeyRow, secret: string) => {
    replace(
      secretBox,
      h(
        "div",
        { class: "secret", "data-testid": "secret" },
        h(
          "p",
          {},
          `${what} ${key.name ?? key.id}. Copy the secret now: it is shown this once and cannot be shown again.`,
        ),
        h("code", { "data-secret": "" }, secret),
        h("button", { type: "button", onclick: () => navigator.clipboard?.writeText(secret) }, "Copy"),
        h("button", { type: "button", onclick: () => secretBox.replaceChildren() }, "Done"),
      ),
    );
  };
  const nameInput = h("input", { name: "key-name", placeholder: "Label, e.g. CI", maxlength: 100 });
  const createButton = actionButton("Create key", async () => {
    try {
      const made = await source.createKey(nameInput.value.trim());
      nameInput.value = "";
      showSecret("Created", made.key, made.secret);
      await refresh();
    } catch (err) {
      showError(err);
    }
  });
  const keyTable = (keys: KeyRow[]) =>
    table(
      ["Key", "Secret ends", "Created", "Last used", "State", ""],
      keys,
      (k) => [
        h("span", {}, h("strong", {}, k.name ?? ""), " ", h("code", {}, k.id)),
        h("code", {}, `${k.prefix}…${k.last4}`),
        when(k.createdAt),
        when(k.lastUsedAt),
        keyState(k),
        k.editable ? keyActions(k) : h("span", { class: "note" }, "from the config file"),
      ],
      "No keys yet.",
    );
  const keyActions = (k: KeyRow) => {
    const grace = h(
      "select",
      { "aria-label": "grace period", name: "grace" },
      h("option", { value: "24h" }, "old secret works 24h"),
      h("option", { value: "1h" }, "old secret works 1h"),
      h("option", { value: "0s" }, "old secret stops now (leaked)"),
    );
    const act = (fn: () => Promise<unknown>) => async () => {
      try {
        await fn();
        await refresh();
      } catch (err) {
        showError(err);
      }
    };
    return h(
      "div",
      { class: "actions", "data-key": k.id },
      grace,
      actionButton("Rotate", async () => {
        try {
          const made = await source.rotate(k.id, grace.value);
          showSecret("Rotated", made.key, made.secret);
          await refresh();
        } catch (err) {
          showError(err);
        }
      }),
      k.previousSecretValidUntil
        ? actionButton(
            "End grace",
            act(() => source.endGrace(k.id)),
          )
        : null,
      actionButton(
        k.disabled ? "Enable" : "Disable",
        act(() => source.setDisabled(k.id, !k.disabled)),
      ),
      confirmButton(
        "Revoke",
        "Really revoke?",
        act(() => source.revoke(k.id)),
      ),
    );
  };
  body.append(h("div", { class: "create" }, nameInput, createButton), secretBox, list);
  return { root, refresh };
}

function keyState(k: KeyRow): string {
  if (k.disabled) return "disabled";
  if (k.previousSecretValidUntil)
    return `rotated; old secret works until ${when(k.previousSecretValidUntil)}`;
  if (k.expiresAt) return `expires ${when(k.expiresAt)}`;
  return "active";
}

// -------------------------------------------------------------------------------------------- limits

export function policySection(policy: Policy, showSource: boolean): HTMLElement {
  const { root, body } = section("Limits in force", "policy");
  const where = (i: PolicyItem) => (showSource && i.source ? `${i.origin} (${i.source})` : i.origin);
  append(body, [
    h("p", {}, "Plan: ", h("strong", {}, policy.plan)),
    table(
      ["Limit", "Allows", "Counted per", "Set by"],
      policy.limits,
      (l) => [l.name ?? "", `${num(l.limit ?? 0)} per ${l.window}`, l.by ?? "", where(l)],
      "No rate limits.",
    ),
    table(
      ["Quota", "Allows", "Counted per", "Set by"],
      policy.quotas,
      (q) => [q.name ?? "", `${num(q.limit ?? 0)} per ${q.period}`, q.by ?? "", where(q)],
      "No quotas.",
    ),
    policy.concurrency
      ? h(
          "p",
          {},
          `At most ${policy.concurrency.limit} requests in flight, set by ${where(policy.concurrency)}.`,
        )
      : null,
    policy.rules
      ? table(["Rule", "Pattern", "Set by"], policy.rules, (r) => [
          r.effect ?? "",
          h("code", {}, r.pattern ?? ""),
          where(r),
        ])
      : null,
  ]);
  return root;
}

// --------------------------------------------------------------------------------------------- quota

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** The usage buckets that draw a quota's period: about a few dozen points whatever its length. */
const bucketFor = (lengthMs: number): [string, number] =>
  lengthMs <= 2 * HOUR ? ["minute", 60_000] : lengthMs <= 2 * DAY ? ["hour", HOUR] : ["day", DAY];

export async function quotaSection(source: TenantSource, clock: ServerClock): Promise<HTMLElement> {
  const { root, body } = section("Quota burn-down", "quota");
  const { quotas } = await source.quota();
  if (quotas.length === 0) body.append(h("p", { class: "empty" }, "No quota."));
  for (const q of quotas) {
    const start = Date.parse(q.periodStart);
    const end = Date.parse(q.resetsAt);
    const now = Math.min(clock.now(), end);
    const [groupBy, bucketMs] = bucketFor(end - start);
    const report = await source.usage(start, Math.max(now, start + 1), groupBy);
    body.append(burnDown(q, report, { start, end, now, bucketMs }));
  }
  return root;
}

/**
 * Remaining units over the period: the usage rows' cost summed bucket by bucket, anchored so that the
 * last point is the quota's own count (which credits and resets also change), and a straight
 * projection from now to the period's end at the pace so far.
 */
function burnDown(
  q: QuotaUse,
  report: UsageReport,
  { start, end, now, bucketMs }: { start: number; end: number; now: number; bucketMs: number },
): HTMLElement {
  const billed = report.groups.reduce((sum, g) => sum + g.costUnits, 0);
  const x: number[] = [start / 1000];
  const remaining: (number | null)[] = [q.limit - (q.used - billed)];
  let cumulative = 0;
  for (const g of report.groups) {
    cumulative += g.costUnits;
    // What a bucket adds has been used by its end (or by now, for the current one).
    x.push(Math.min(Date.parse(g.group!) + bucketMs, now) / 1000);
    remaining.push(q.limit - (q.used - billed) - cumulative);
  }
  const elapsed = now - start;
  const projected = elapsed > (end - start) * 0.01 ? (q.used * (end - start)) / elapsed : null;
  if (x.at(-1) === now / 1000) {
    x.pop();
    remaining.pop();
  }
  x.push(now / 1000, end / 1000);
  remaining.push(q.remaining, null);
  const projection: (number | null)[] = x.map(() => null);
  projection[projection.length - 2] = q.remaining;
  projection[projection.length - 1] = projected === null ? null : Math.max(0, q.limit - projected);
  const runsOut = projected !== null && projected > q.limit ? start + (q.limit / q.used) * elapsed : null;
  const summary =
    `${num(q.used)} of ${num(q.limit)} used (${percent(q.used, q.limit)}%) this ${q.period}; resets ${when(q.resetsAt)}. ` +
    (projected === null
      ? "Too early in the period to project."
      : runsOut !== null
        ? `At this pace it runs out around ${when(new Date(runsOut).toISOString())}.`
        : `At this pace about ${num(Math.round(projected))} will be used by the end.`);
  return h(
    "div",
    { class: "quota", "data-quota": q.name },
    h("p", {}, h("strong", {}, q.name), ": ", summary),
    chart(`quota:${q.name}`, `${q.name}: remaining units`, x, [
      { label: "remaining", values: remaining, color: "#1f77b4" },
      { label: "projected", values: projection, color: "#d62728", dash: [6, 4] },
    ]),
  );
}

// --------------------------------------------------------------------------------------------- usage

const RANGES: { label: string; ms: number; groupBy: string; stepMs: number }[] = [
  { label: "Last hour", ms: HOUR, groupBy: "minute", stepMs: 60_000 },
  { label: "Last 24 hours", ms: DAY, groupBy: "hour", stepMs: HOUR },
  { label: "Last 7 days", ms: 7 * DAY, groupBy: "hour", stepMs: HOUR },
  { label: "Last 30 days", ms: 30 * DAY, groupBy: "day", stepMs: DAY },
];

export function usageSection(source: TenantSource, clock: ServerClock) {
  const select = h(
    "select",
    { name: "range", "aria-label": "range" },
    ...RANGES.map((r, i) => h("option", { value: String(i), selected: i === 1 }, r.label)),
  );
  const { root, body } = section("Usage", "usage", select);
  const refusalsBox = h("div", { id: "refusals" });
  const draw = async () => {
    const range = RANGES[Number(select.value)]!;
    const to = Math.ceil(clock.now() / range.stepMs) * range.stepMs;
    const from = to - range.ms;
    const [report, refusals] = await Promise.all([
      source.usage(from, to, range.groupBy),
      source.refusals(from, to),
    ]);
    const byStart = new Map(report.groups.map((g) => [Date.parse(g.group!), g]));
    const x: number[] = [];
    const pick = <T>(f: (g: UsageGroup) => T, empty: T) => {
      const out: T[] = [];
      for (let t = Math.floor(from / range.stepMs) * range.stepMs; t < to; t += range.stepMs) {
        const g = byStart.get(t);
        out.push(g ? f(g) : empty);
      }
      return out;
    };
    for (let t = Math.floor(from / range.stepMs) * range.stepMs; t < to; t += range.stepMs) x.push(t / 1000);
    const t = report.total;
    replace(
      body,
      h(
        "p",
        { class: "totals" },
        `${num(t.requests)} requests, ${num(t.errors)} errors, ${num(t.costUnits)} cost units`,
        t.latencyMs ? `, latency p50 ${num(t.latencyMs.p50)} ms, p99 ${num(t.latencyMs.p99)} ms` : "",
        ".",
      ),
      h(
        "div",
        { class: "charts" },
        chart("requests", "Requests and errors", x, [
          { label: "requests", values: pick((g) => g.requests, 0), color: "#1f77b4" },
          { label: "errors", values: pick((g) => g.errors, 0), color: "#d62728" },
        ]),
        chart("cost", "Cost units", x, [
          { label: "cost", values: pick((g) => g.costUnits, 0), color: "#2ca02c" },
        ]),
        chart("latency", "Latency (ms)", x, [
          {
            label: "p50",
            values: pick((g) => g.latencyMs?.p50 ?? null, null),
            color: "#9467bd",
            unit: " ms",
          },
          {
            label: "p99",
            values: pick((g) => g.latencyMs?.p99 ?? null, null),
            color: "#ff7f0e",
            unit: " ms",
          },
        ]),
      ),
    );
    replace(
      refusalsBox,
      h("h3", {}, "Recent refusals"),
      table(
        ["When", "Type", "Status", "Request", "Key", "Request id"],
        refusals.items,
        (r) => [
          when(r.at),
          r.code,
          String(r.status),
          h("code", {}, `${r.method} ${r.path}`),
          r.keyId ?? "—",
          h("code", {}, r.requestId),
        ],
        "No refusals in this range.",
      ),
    );
  };
  select.addEventListener("change", () => draw().catch(showError));
  root.append(refusalsBox);
  return { root, draw };
}
