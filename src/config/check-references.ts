/**
 * Checks a schema-valid config for what a schema cannot express: names that refer to nothing,
 * patterns that do not parse or can never match, duplicate keys, unsafe listeners.
 */
import { limitName, quotaName } from "../gateway/compile-policies.ts";
import {
  compareSpecificity,
  covers,
  type PathPattern,
  PatternError,
  parsePattern,
} from "../gateway/pattern.ts";
import { closest } from "../lib/closest.ts";
import { checkValues } from "./check-values.ts";
import type { GatewayConfig, LimitDecl, QuotaDecl, RuleDecl } from "./schema.ts";

export interface ReferenceIssue {
  path: (string | number)[];
  message: string;
  hint?: string;
  atKey?: boolean;
}

type Path = (string | number)[];

export function checkReferences(c: GatewayConfig): ReferenceIssue[] {
  const issues: ReferenceIssue[] = [];
  const upstreamNames = Object.keys(c.upstreams);
  const planNames = Object.keys(c.plans);

  const mustExist = (path: Path, name: string, known: string[], what: string) => {
    if (known.includes(name)) return;
    const guess = closest(name, known);
    issues.push({
      path,
      message: `no ${what} named "${name}"`,
      hint: guess
        ? `did you mean "${guess}"?`
        : known.length
          ? `declared ${what}s: ${known.join(", ")}`
          : `declare it under ${what}s`,
    });
  };

  const pattern = (path: Path, text: string): PathPattern | undefined => {
    try {
      return parsePattern(text);
    } catch (err) {
      if (!(err instanceof PatternError)) throw err;
      issues.push({ path, message: `invalid pattern "${text}": ${err.message}`, hint: err.hint });
      return undefined;
    }
  };

  const rules = (path: Path, list: RuleDecl[] | undefined) =>
    list?.forEach((r, i) => {
      const [effect, text] = "allow" in r ? ["allow", r.allow] : ["deny", r.deny];
      pattern([...path, i, effect], text);
    });

  const quota = (path: Path, q: QuotaDecl | undefined) => {
    if (!q?.timezone) return;
    try {
      new Intl.DateTimeFormat("en-US", { timeZone: q.timezone });
    } catch {
      issues.push({
        path: [...path, "timezone"],
        message: `unknown time zone "${q.timezone}"`,
        hint: "use an IANA name such as UTC or Europe/Berlin",
      });
    }
  };

  // Names of the limits and quota in force for one request must differ: they key counters and headers.
  const uniqueNames = (entries: { path: Path; name: string }[]) => {
    const seen = new Map<string, Path>();
    for (const e of entries) {
      if (seen.has(e.name)) {
        issues.push({
          path: e.path,
          message: `a limit named "${e.name}" is already in force here`,
          hint: 'give one of them its own name with name: "..." (or remove the duplicate)',
        });
      } else seen.set(e.name, e.path);
    }
  };
  const named = (path: Path, limits: LimitDecl[] | undefined, q: QuotaDecl | undefined) => [
    ...(limits ?? []).map((l, i) => ({ path: [...path, "limits", i], name: limitName(l) })),
    ...(q ? [{ path: [...path, "quota"], name: quotaName(q) }] : []),
  ];

  // Upstreams
  for (const [name, u] of Object.entries(c.upstreams)) {
    if (!("url" in u)) continue;
    try {
      const url = new URL(u.url);
      if (url.username || url.password) {
        issues.push({
          path: ["upstreams", name, "url"],
          message: "credentials in the URL would be visible in logs",
          hint: "put them in headers: { authorization: ... }",
        });
      }
      if (url.search || url.hash) {
        issues.push({
          path: ["upstreams", name, "url"],
          message: "the upstream URL may not have a query or fragment",
          hint: "give the base URL; the request's own path and query are appended",
        });
      }
    } catch {
      issues.push({ path: ["upstreams", name, "url"], message: `"${u.url}" is not a valid URL` });
    }
  }

  // Plans
  for (const [name, p] of Object.entries(c.plans)) {
    rules(["plans", name, "rules"], p.rules);
    quota(["plans", name, "quota"], p.quota);
    uniqueNames(named(["plans", name], p.limits, p.quota));
  }

  // Routes
  const compiled: (PathPattern | undefined)[] = c.routes.map((r, i) => {
    mustExist(["routes", i, "upstream"], r.upstream, upstreamNames, "upstream");
    return pattern(["routes", i, "match"], r.match);
  });
  compiled.forEach((b, j) => {
    if (!b) return;
    const winner = compiled.findIndex((a, i) => {
      if (!a || i === j || !covers(a, b)) return false;
      const cmp = compareSpecificity(a, b);
      return cmp < 0 || (cmp === 0 && i < j);
    });
    if (winner >= 0) {
      issues.push({
        path: ["routes", j, "match"],
        message: `this route can never match: routes[${winner}] "${c.routes[winner]!.match}" takes every request it would`,
        hint: "remove it, or make it more specific than the other route",
      });
    }
  });

  // Tenants and keys
  const keyIds = new Map<string, string>();
  const secrets = new Map<string, string>();
  for (const [tid, t] of Object.entries(c.tenants ?? {})) {
    const base: Path = ["tenants", tid];
    mustExist([...base, "plan"], t.plan, planNames, "plan");
    for (const [from, to] of Object.entries(t.upstreams ?? {})) {
      mustExist([...base, "upstreams", from], from, upstreamNames, "upstream");
      mustExist([...base, "upstreams", from], to, upstreamNames, "upstream");
    }
    rules([...base, "rules"], t.rules);
    quota([...base, "quota"], t.quota);
    const plan = c.plans[t.plan];
    const tenantNames = [
      ...(plan ? named(["plans", t.plan], plan.limits, plan.quota) : []),
      ...named(base, t.limits, t.quota),
    ];
    uniqueNames(tenantNames);
    t.keys?.forEach((k, i) => {
      const kp: Path = [...base, "keys", i];
      if ((k.secret === undefined) === (k.hash === undefined)) {
        issues.push({
          path: kp,
          message: "give exactly one of secret or hash",
          hint: "hash: sha256:<hex> keeps plaintext out of committed files",
        });
      }
      const other = keyIds.get(k.id);
      if (other)
        issues.push({
          path: [...kp, "id"],
          message: `key id "${k.id}" is already used by tenant "${other}"`,
          hint: "key ids are unique across all tenants",
        });
      else keyIds.set(k.id, tid);
      const material = k.secret ?? k.hash;
      if (material !== undefined) {
        const dup = secrets.get(material);
        if (dup)
          issues.push({
            path: kp,
            message: `key "${k.id}" has the same secret as key "${dup}"`,
            hint: "every key needs its own secret",
          });
        else secrets.set(material, k.id);
      }
      rules([...kp, "rules"], k.rules);
      quota([...kp, "quota"], k.quota);
      uniqueNames([...tenantNames, ...named(kp, k.limits, k.quota && { ...k.quota, by: "key" })]);
    });
  }

  // Server
  const listen = c.server?.listen ?? "127.0.0.1:8080";
  const admin = c.server?.admin ?? "127.0.0.1:8081";
  if (listen === admin && !listen.endsWith(":0")) {
    issues.push({
      path: ["server", "admin"],
      message: "the admin listener and the data plane listener are the same address",
      hint: "give the control API its own port, e.g. 127.0.0.1:8081",
    });
  }
  if (!isLoopback(admin) && !c.server?.adminToken) {
    issues.push({
      path: ["server", "admin"],
      message: `the control API would listen on ${admin} without a token`,
      hint: "set server.adminToken (e.g. ${GATEHOUSE_ADMIN_TOKEN}) or listen on 127.0.0.1",
    });
  }

  return [...issues, ...checkValues(c)];
}

export function isLoopback(hostPort: string): boolean {
  const host = hostPort.slice(0, hostPort.lastIndexOf(":")).replace(/^\[|\]$/g, "");
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}
