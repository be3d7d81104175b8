/**
 * Values the schema admits but the gateway could not honour as written: durations out of range,
 * settings that would be ignored, upstream headers that would break or impersonate something. Each
 * would otherwise change a policy without a word, so each is a located error. Messages never quote
 * a value (many hold credentials); the path says which one.
 */
import type { ReferenceIssue } from "./check-references.ts";
import type {
  CredentialHeaderDecl,
  GatewayConfig,
  LimitDecl,
  PredicateDecl,
  QuotaDecl,
  RouteDecl,
  RuleDecl,
} from "./schema.ts";
import { parseDuration, parseSize } from "./units.ts";

type Path = (string | number)[];

interface DurationBound {
  /** Why 0 is refused, or undefined when 0 is a meaningful setting. */
  zero?: string;
  max: string;
  why: string;
}

// setTimeout waits at most 2^31 − 1 ms (about 24.8 days); a longer delay fires at once.
const timer = (zero?: string): DurationBound => ({
  zero,
  max: "24d",
  why: "timers cannot wait longer (2^31 - 1 ms, about 24.8 days)",
});

const bounds = {
  window: {
    zero: "a 0 window counts nothing, so the limit would never refuse",
    max: "365d",
    why: "for longer periods use a quota",
  },
  upstreamTimeout: timer("0 would answer every request with 504"),
  upstreamIdleTimeout: timer("0 would cut off every response body"),
  drainTimeout: timer(),
  flushInterval: timer(),
  serverIdleTimeout: {
    zero: "0 would never close idle client connections",
    max: "255s",
    why: "Bun closes idle connections after at most 255 seconds",
  },
  retention: { max: "3650d", why: "0d keeps rows forever" },
  mockDelay: timer(),
} satisfies Record<string, DurationBound>;

const MAX_BODY_SIZE = "1024gb";
/** A measured body is held in memory until the response ends. */
const MAX_MEASURE_SIZE = "64mb";

/** Hop-by-hop and framing headers: the gateway manages them per connection. */
const connectionHeaders = new Set([
  "host",
  "connection",
  "content-length",
  "transfer-encoding",
  "te",
  "trailer",
  "upgrade",
  "keep-alive",
  "expect",
]);
/** What the gateway tells the upstream about the request: an injected value would overwrite it. */
const isIdentityHeader = (name: string) =>
  name === "x-request-id" || name.startsWith("x-gatehouse-") || name.startsWith("x-forwarded-");

export function checkValues(c: GatewayConfig): ReferenceIssue[] {
  const issues: ReferenceIssue[] = [];

  const duration = (path: Path, text: string | undefined, b: DurationBound) => {
    if (text === undefined) return;
    const ms = parseDuration(text);
    if (ms === 0 && b.zero) issues.push({ path, message: "must be longer than 0", hint: b.zero });
    // `!(<=)` also catches what overflowed to Infinity.
    else if (!(ms <= parseDuration(b.max)))
      issues.push({ path, message: `must be at most ${b.max}`, hint: b.why });
  };

  const limits = (path: Path, list: LimitDecl[] | undefined, onKey = false) =>
    list?.forEach((l, i) => {
      duration([...path, i, "window"], l.window, bounds.window);
      if (onKey && l.by === "tenant") issues.push(countsPerKey([...path, i, "by"]));
    });

  const quota = (path: Path, q: QuotaDecl | undefined, onKey = false) => {
    if (!q) return;
    if (q.anchor !== undefined && q.period !== "month") {
      issues.push({
        path: [...path, "anchor"],
        message: `anchor applies to monthly quotas only; this one is per ${q.period}`,
        hint: "remove anchor, or use period: month",
      });
    }
    if (onKey && q.by === "tenant") issues.push(countsPerKey([...path, "by"]));
  };

  for (const [name, p] of Object.entries(c.plans)) {
    limits(["plans", name, "limits"], p.limits);
    quota(["plans", name, "quota"], p.quota);
    issues.push(...ruleIssues(["plans", name, "rules"], p.rules));
  }
  for (const [id, t] of Object.entries(c.tenants ?? {})) {
    limits(["tenants", id, "limits"], t.limits);
    quota(["tenants", id, "quota"], t.quota);
    issues.push(...ruleIssues(["tenants", id, "rules"], t.rules));
    t.keys?.forEach((k, i) => {
      limits(["tenants", id, "keys", i, "limits"], k.limits, true);
      quota(["tenants", id, "keys", i, "quota"], k.quota, true);
      issues.push(...ruleIssues(["tenants", id, "keys", i, "rules"], k.rules));
    });
  }
  c.routes.forEach((r, i) => {
    issues.push(...costFromIssues(["routes", i], r));
  });

  for (const [name, u] of Object.entries(c.upstreams)) {
    duration(["upstreams", name, "timeout"], u.timeout, bounds.upstreamTimeout);
    duration(["upstreams", name, "idleTimeout"], u.idleTimeout, bounds.upstreamIdleTimeout);
    if ("url" in u) issues.push(...headerIssues(["upstreams", name, "headers"], u.headers ?? {}));
    else if (typeof u.mock === "object") {
      duration(["upstreams", name, "mock", "delay"], u.mock.delay, bounds.mockDelay);
      issues.push(...mockHeaderIssues(["upstreams", name, "mock", "headers"], u.mock.headers ?? {}));
    }
  }

  const server = c.server ?? {};
  duration(["server", "idleTimeout"], server.idleTimeout, bounds.serverIdleTimeout);
  duration(["server", "drainTimeout"], server.drainTimeout, bounds.drainTimeout);
  for (const key of ["listen", "admin"] as const) {
    const at = server[key];
    if (at !== undefined && Number(at.slice(at.lastIndexOf(":") + 1)) > 65535) {
      issues.push({ path: ["server", key], message: "the port must be at most 65535" });
    }
  }
  if (server.maxBodySize !== undefined && !(parseSize(server.maxBodySize) <= parseSize(MAX_BODY_SIZE))) {
    issues.push({ path: ["server", "maxBodySize"], message: `must be at most ${MAX_BODY_SIZE}` });
  }
  duration(["usage", "flushInterval"], c.usage?.flushInterval, bounds.flushInterval);
  duration(["usage", "retention"], c.usage?.retention, bounds.retention);

  return issues;
}

/** Shadow allows, and header tests that could never match as written. */
function ruleIssues(path: Path, rules: RuleDecl[] | undefined): ReferenceIssue[] {
  const issues: ReferenceIssue[] = [];
  rules?.forEach((r, i) => {
    if ("allow" in r && r.mode === "shadow") {
      issues.push({
        path: [...path, i, "mode"],
        message: "an allow cannot be a shadow: an allow only ever admits, so it would never record anything",
        hint: "to watch a narrower policy, add a deny with mode: shadow for what it would stop allowing",
      });
    }
    const seen = new Map<string, string>();
    for (const [name, p] of Object.entries(r.headers ?? {})) {
      const at = [...path, i, "headers", name];
      // Servers read `_` in a header name as `-` (see gateway/request-predicates.ts).
      const same = name.toLowerCase().replaceAll("_", "-");
      const first = seen.get(same);
      if (first !== undefined) {
        issues.push({
          path: at,
          atKey: true,
          message: `"${name}" is the same header as "${first}" (names ignore case, and _ reads as -)`,
          hint: "keep one of them",
        });
      } else seen.set(same, name);
      const bad = predicateValues(p).find((v) => v !== v.trim() || [...v].some(isControl));
      if (bad !== undefined) {
        issues.push({
          path: at,
          message: "a header value never starts or ends with spaces, nor holds control characters",
          hint: "remove them: header values arrive trimmed, on one line",
        });
      }
    }
  });
  return issues;
}

const predicateValues = (p: PredicateDecl): string[] =>
  "equals" in p ? [p.equals] : "oneOf" in p ? p.oneOf : [];

function costFromIssues(path: Path, r: RouteDecl): ReferenceIssue[] {
  if (!r.costFrom) return [];
  const issues: ReferenceIssue[] = [];
  const cost = r.cost ?? 1;
  if (cost === 0) {
    issues.push({
      path: [...path, "cost"],
      message: "a route that measures its cost must cost at least 1 at admission",
      hint: "admission counts the route's cost: at 0 every request would pass however much was spent",
    });
  }
  const { fallback } = r.costFrom;
  if (fallback !== undefined && fallback < cost) {
    issues.push({
      path: [...path, "costFrom", "fallback"],
      message: `a fallback below the route's cost (${cost}) would change nothing`,
      hint: "the route's cost is the least a request counts; lower cost, or remove fallback",
    });
  }
  if ("maxBytes" in r.costFrom && r.costFrom.maxBytes !== undefined) {
    const size = parseSize(r.costFrom.maxBytes);
    if (size === 0) {
      issues.push({ path: [...path, "costFrom", "maxBytes"], message: "must be more than 0" });
    } else if (!(size <= parseSize(MAX_MEASURE_SIZE))) {
      issues.push({
        path: [...path, "costFrom", "maxBytes"],
        message: `must be at most ${MAX_MEASURE_SIZE}`,
        hint: "a measured body is held in memory until the response ends",
      });
    }
  }
  return issues;
}

function countsPerKey(path: Path): ReferenceIssue {
  return {
    path,
    message: "a key's limits and quota always count that key alone",
    hint: "remove by: tenant, or declare the limit on the tenant to share it among its keys",
  };
}

/** A built-in upstream's answer headers: any name, but values a response can carry. */
function mockHeaderIssues(path: Path, headers: Record<string, string>): ReferenceIssue[] {
  const issues: ReferenceIssue[] = [];
  for (const [name, value] of Object.entries(headers)) {
    if ([...value].some(isControl) || [...value].some((ch) => ch.charCodeAt(0) > 0xff)) {
      issues.push({
        path: [...path, name],
        message: "the value contains a control character or a character beyond Latin-1",
        hint: "header values are one line of Latin-1 text; check the YAML escapes",
      });
    }
  }
  return issues;
}

/** Control characters other than the tab, which header values may hold. */
const isControl = (ch: string) => {
  const c = ch.charCodeAt(0);
  return (c < 0x20 && c !== 0x09) || c === 0x7f;
};

function headerIssues(path: Path, headers: Record<string, string | CredentialHeaderDecl>): ReferenceIssue[] {
  const issues: ReferenceIssue[] = [];
  const seen = new Map<string, string>();
  for (const [name, declared] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    const header = [...path, name];
    // A credential's value is checked when it is stored; its format is checked like any value.
    const value = typeof declared === "string" ? declared : (declared.format ?? "{value}");
    const at = typeof declared === "string" ? header : [...header, "format"];
    if (!value.includes("{value}") && typeof declared !== "string") {
      issues.push({
        path: at,
        message: 'the format has no "{value}", so the credential would not be sent',
        hint: 'write where the credential goes, e.g. "Bearer {value}"',
      });
    }
    const first = seen.get(lower);
    if (first !== undefined) {
      issues.push({
        path: header,
        atKey: true,
        message: `"${name}" is the same header as "${first}" (header names ignore case)`,
        hint: "keep one of them",
      });
    } else seen.set(lower, name);
    if (connectionHeaders.has(lower) || lower.startsWith("proxy-")) {
      issues.push({
        path: header,
        atKey: true,
        message: `"${name}" is a hop-by-hop or framing header, which the gateway sets per connection`,
        hint: "remove it",
      });
    } else if (isIdentityHeader(lower)) {
      issues.push({
        path: header,
        atKey: true,
        message: `"${name}" is set by the gateway for each request; injecting it would overwrite that`,
        hint: "x-gatehouse-*, x-request-id and x-forwarded-* are the gateway's; choose another name",
      });
    }
    // CR or LF would split the header; NUL and other controls are refused by HTTP parsers.
    if ([...value].some(isControl)) {
      issues.push({
        path: at,
        message: "the value contains a control character (CR, LF, NUL or another)",
        hint: "header values are one line of text; check the YAML escapes",
      });
    } else if ([...value].some((ch) => ch.charCodeAt(0) > 0xff)) {
      issues.push({
        path: at,
        message: "the value contains characters a header cannot carry (beyond Latin-1)",
        hint: "percent- or base64-encode it",
      });
    }
  }
  return issues;
}
