/**
 * Test mode's `Gatehouse-Debug: 1`: the response carries a compact explanation of the request in a
 * `Gatehouse-Debug` header, judged just before the request ran (so counts are those it found).
 * Only test mode offers it: it tells a client about policies the data plane otherwise keeps to itself.
 */
import type { Handler } from "../gateway/pipeline.ts";
import type { KeyView, Snapshot } from "../gateway/snapshot.ts";
import { looksLikeJwt } from "../identity/tokens.ts";
import type { Clock } from "../lib/clock.ts";
import { hashKey } from "../lib/key-hash.ts";
import { presentedKey } from "../policies/auth/index.ts";
import {
  type ExplainPolicies,
  type Explanation,
  explainRequest,
  identityOfSecret,
  identityOfToken,
} from "./explain.ts";

export const DEBUG_HEADER = "gatehouse-debug";

export function withDebugHeader(
  handle: Handler,
  snapshot: () => Snapshot,
  clock: Clock,
  policies: ExplainPolicies,
): Handler {
  return async (req, clientIp) => {
    if (req.headers.get(DEBUG_HEADER) !== "1") return handle(req, clientIp);
    const snap = snapshot();
    const secret = presentedKey(req.headers);
    const key: KeyView | undefined = secret ? snap.keysByHash.get(hashKey(secret)) : undefined;
    const url = new URL(req.url);
    const identity =
      secret && looksLikeJwt(secret)
        ? await identityOfToken(snap, policies.tokens, secret, clock.now())
        : identityOfSecret(snap, key, clock.now());
    const explanation = await explainRequest(snap, clock, policies, {
      method: req.method,
      target: req.url.slice(url.origin.length),
      headers: req.headers,
      identity,
    });
    const res = await handle(req, clientIp);
    res.headers.set(DEBUG_HEADER, compact(explanation));
    return res;
  };
}

/** One header line: `outcome=refused rate-limited; tenant=acme; ...`, ASCII, quotes escaped. */
export function compact(e: Explanation): string {
  const q = (s: string) => `"${s.replace(/[\\"]/g, "\\$&").replace(/[^\x20-\x7e]/g, "?")}"`;
  const parts = [
    `outcome=${e.outcome}${e.problem ? ` ${e.problem.slice(e.problem.lastIndexOf(":") + 1)}` : ""}`,
  ];
  if (e.refusedBy) parts.push(`by=${e.refusedBy}`);
  if (e.tenant) parts.push(`tenant=${q(e.tenant.id)}`);
  if (e.key) parts.push(`key=${q(e.key.id)}`);
  if (e.identity.source && e.identity.source !== "apiKey") parts.push(`source=${q(e.identity.source)}`);
  for (const n of e.identity.named)
    parts.push(`named=${n.source}:${q(n.value)}${n.agrees ? "" : " disagrees"}`);
  if (e.route) parts.push(`route=${q(e.route.match)} ${e.route.declaredAt}`);
  // A shadow never refuses: it "would".
  const shadow = (mode: string) => (mode === "shadow" ? "(shadow)" : "");
  for (const r of e.rules) parts.push(`${r.effect}${shadow(r.mode)}=${q(r.pattern)} ${r.declaredAt}`);
  for (const l of e.limits) {
    const refuses = l.refuses ? (l.mode === "shadow" ? " would-refuse" : " refuses") : "";
    parts.push(
      `${l.kind}${shadow(l.mode)}=${q(l.name)} ${l.used}/${l.limit}${l.adds ? `+${l.adds}` : ""}${refuses}`,
    );
  }
  if (e.concurrency) parts.push(`concurrency=${e.concurrency.inFlight}/${e.concurrency.limit}`);
  if (e.counters && e.counters.decidedBy !== "memory") parts.push(`counters=${e.counters.decidedBy}`);
  return parts.join("; ");
}
