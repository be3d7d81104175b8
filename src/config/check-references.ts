/**
 * Checks a schema-valid config for what a schema cannot express: names that refer to nothing,
 * patterns that do not parse or can never match, duplicate keys, unsafe listeners.
 */

import { checkRedisSettings } from "../cluster/redis/settings.ts";
import { limitName, quotaName } from "../gateway/compile-policies.ts";
import {
  compareSpecificity,
  covers,
  type PathPattern,
  PatternError,
  parsePattern,
} from "../gateway/pattern.ts";
import { checkIdentity } from "../identity/check.ts";
import { closest } from "../lib/closest.ts";
import { DEFAULT_ADMIN, DEFAULT_LISTEN } from "../lib/listen-address.ts";
import { checkThreadSettings } from "../threads/settings.ts";
import { OVERRIDE_HINT, overrideProblem } from "../vault/references.ts";
import { checkValues } from "./check-values.ts";
import { formatPath } from "./errors.ts";
import type { GatewayConfig, LimitDecl, QuotaDecl, RuleDecl } from "./schema.ts";
import { type ShowValue, showWritten } from "./show-value.ts";

export interface ReferenceIssue {
  path: (string | number)[];
  message: string;
  hint?: string;
  atKey?: boolean;
}

type Path = (string | number)[];

/** `show` names interpolated values by their variable, so no message echoes the environment. */
export function checkReferences(c: GatewayConfig, show: ShowValue = showWritten): ReferenceIssue[] {
  const issues: ReferenceIssue[] = [];
  const upstreamNames = Object.keys(c.upstreams);
  const planNames = Object.keys(c.plans);

  // A message about a value from the environment names the variable as its subject, not the value.
  const say = (path: Path, value: string, written: (q: string) => string, fromEnv: (q: string) => string) =>
    show.fromEnv(path) ? fromEnv(show(path, value)) : written(JSON.stringify(value));

  const mustExist = (path: Path, name: string, known: string[], what: string, isKey = false) => {
    if (known.includes(name)) return;
    const guess = closest(name, known);
    issues.push({
      path,
      message: isKey
        ? `no ${what} named ${JSON.stringify(name)}`
        : say(
            path,
            name,
            (q) => `no ${what} named ${q}`,
            (q) => `${q} names no ${what}`,
          ),
      hint: guess
        ? `did you mean "${guess}"?`
        : known.length
          ? `declared ${what}s: ${known.join(", ")}`
          : `declare it under ${what}s`,
    });
  };

  const pattern = (path: Path, text: string, lenient = false): PathPattern | undefined => {
    try {
      return parsePattern(text, { lenient });
    } catch (err) {
      if (!(err instanceof PatternError)) throw err;
      issues.push(
        show.fromEnv(path)
          ? { path, message: `${show(path, text)} is not a valid pattern: ${err.summary}` }
          : { path, message: `invalid pattern ${show(path, text)}: ${err.message}`, hint: err.hint },
      );
      return undefined;
    }
  };

  const rules = (path: Path, list: RuleDecl[] | undefined) =>
    list?.forEach((r, i) => {
      const [effect, text] = "allow" in r ? ["allow", r.allow] : ["deny", r.deny];
      pattern([...path, i, effect], text, effect === "deny");
    });

  const quota = (path: Path, q: QuotaDecl | undefined) => {
    if (!q?.timezone) return;
    try {
      new Intl.DateTimeFormat("en-US", { timeZone: q.timezone });
    } catch {
      issues.push({
        path: [...path, "timezone"],
        message: say(
          [...path, "timezone"],
          q.timezone,
          (tz) => `unknown time zone ${tz}`,
          (tz) => `${tz} is not a known time zone`,
        ),
        hint: "use an IANA name such as UTC or Europe/Berlin",
      });
    }
  };

  // A key whose id came from the environment is named by where it is declared.
  const keyName = (path: Path, id: string) =>
    show.fromEnv([...path, "id"]) ? formatPath(path) : JSON.stringify(id);

  // Names of the limits and quota in force for one request must differ: they key counters and headers.
  const uniqueNames = (entries: { path: Path; name: string; fromEnv: boolean }[]) => {
    const seen = new Map<string, Path>();
    for (const e of entries) {
      if (seen.has(e.name)) {
        issues.push({
          path: e.path,
          message: e.fromEnv
            ? "another limit of the same name is already in force here"
            : `a limit named "${e.name}" is already in force here`,
          hint: 'give one of them its own name with name: "..." (or remove the duplicate)',
        });
      } else seen.set(e.name, e.path);
    }
  };
  // A derived name spells its limit's values: one made of the environment's is not repeated.
  const entry = (path: Path, name: string, derivedFrom: string[]) => ({
    path,
    name,
    fromEnv: [...derivedFrom, "by", "name"].some((k) => show.fromEnv([...path, k])),
  });
  // flatMap, not map: it skips the holes `validate` leaves where a limit failed its schema (prune.ts).
  const named = (path: Path, limits: LimitDecl[] | undefined, q: QuotaDecl | undefined) => [
    ...(limits ?? []).flatMap((l, i) => [entry([...path, "limits", i], limitName(l), ["limit", "window"])]),
    ...(q ? [entry([...path, "quota"], quotaName(q), ["period"])] : []),
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
      const path = ["upstreams", name, "url"];
      issues.push({ path, message: `${show(path, u.url)} is not a valid URL` });
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
      const other = say(
        ["routes", winner, "match"],
        c.routes[winner]!.match,
        (q) => q,
        (q) => `(${q})`,
      );
      issues.push({
        path: ["routes", j, "match"],
        message: `this route can never match: routes[${winner}] ${other} takes every request it would`,
        hint: "remove it, or make it more specific than the other route",
      });
    }
  });

  // Tenants and keys
  const keyIds = new Map<string, string>();
  const secrets = new Map<string, { id: string; path: Path }>();
  for (const [tid, t] of Object.entries(c.tenants ?? {})) {
    const base: Path = ["tenants", tid];
    mustExist([...base, "plan"], t.plan, planNames, "plan");
    for (const [from, to] of Object.entries(t.upstreams ?? {})) {
      // The key is never interpolated; its value may be.
      mustExist([...base, "upstreams", from], from, upstreamNames, "upstream", true);
      mustExist([...base, "upstreams", from], to, upstreamNames, "upstream");
    }
    for (const upstream of Object.keys(t.credentials ?? {})) {
      const path = [...base, "credentials", upstream];
      const problem = c.upstreams[upstream] ? overrideProblem(c, upstream) : null;
      if (problem) issues.push({ path, atKey: true, message: problem, hint: OVERRIDE_HINT });
      else mustExist(path, upstream, upstreamNames, "upstream", true);
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
          message: say(
            [...kp, "id"],
            k.id,
            (id) => `key id ${id} is already used by tenant "${other}"`,
            (id) => `${id} is a key id already used by tenant "${other}"`,
          ),
          hint: "key ids are unique across all tenants",
        });
      else keyIds.set(k.id, tid);
      const material = k.secret ?? k.hash;
      if (material !== undefined) {
        const dup = secrets.get(material);
        if (dup)
          issues.push({
            path: kp,
            message: `key ${keyName(kp, k.id)} has the same secret as key ${keyName(dup.path, dup.id)}`,
            hint: "every key needs its own secret",
          });
        else secrets.set(material, { id: k.id, path: kp });
      }
      rules([...kp, "rules"], k.rules);
      quota([...kp, "quota"], k.quota);
      uniqueNames([...tenantNames, ...named(kp, k.limits, k.quota && { ...k.quota, by: "key" })]);
    });
  }

  // Server
  const listen = c.server?.listen ?? DEFAULT_LISTEN;
  const admin = c.server?.admin ?? DEFAULT_ADMIN;
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
      message: say(
        ["server", "admin"],
        admin,
        () => `the control API would listen on ${admin} without a token`,
        (q) => `${q} is not a loopback address, and the control API would have no token`,
      ),
      hint: "set server.adminToken (e.g. ${GATEHOUSE_ADMIN_TOKEN}) or listen on 127.0.0.1",
    });
  }

  return [
    ...issues,
    ...checkValues(c),
    ...checkIdentity(c),
    ...checkRedisSettings(c),
    ...checkThreadSettings(c),
  ];
}

export function isLoopback(hostPort: string): boolean {
  const host = hostPort.slice(0, hostPort.lastIndexOf(":")).replace(/^\[|\]$/g, "");
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}
