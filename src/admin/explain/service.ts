/**
 * POST /explain: the data plane's decision for a request made as a key (or as a new key of a
 * tenant), with where each rule, route and limit involved is declared. Knows nothing of HTTP.
 */
import {
  type ExplainPolicies,
  type Explanation,
  explainRequest,
  identityOfKey,
  identityOfTenant,
  identityOfToken,
} from "../../explain/explain.ts";
import { type Source, sourceLocator } from "../declared-source.ts";
import { notFound } from "../problem.ts";
import type { AdminStore } from "../store.ts";

export interface ExplainBody {
  key?: string | undefined;
  tenant?: string | undefined;
  token?: string | undefined;
  method: string;
  path: string;
  headers?: Record<string, string> | undefined;
}

export type ExplainAnswer = Explanation & {
  route: (NonNullable<Explanation["route"]> & { source: Source }) | null;
  rules: (Explanation["rules"][number] & { source: Source })[];
  limits: (Explanation["limits"][number] & { source: Source })[];
};

export class ExplainService {
  constructor(
    private readonly store: AdminStore,
    private readonly policies: ExplainPolicies,
  ) {}

  async explain(body: ExplainBody): Promise<ExplainAnswer> {
    const { state, clock } = this.store;
    const snapshot = state.snapshot;
    const identity =
      body.key !== undefined
        ? identityOfKey(snapshot, body.key, clock.now())
        : body.token !== undefined
          ? await identityOfToken(snapshot, this.policies.tokens, body.token, clock.now())
          : identityOfTenant(snapshot, body.tenant!);
    if (!identity) {
      throw notFound(
        body.key !== undefined ? `No key with id "${body.key}".` : `No tenant with id "${body.tenant}".`,
      );
    }
    const e = await explainRequest(snapshot, clock, this.policies, {
      method: body.method,
      target: body.path,
      headers: new Headers(body.headers ?? {}),
      identity,
    });
    const source = sourceLocator(this.store);
    return {
      ...e,
      route: e.route && { ...e.route, source: source(e.route.declaredAt) },
      rules: e.rules.map((r) => ({ ...r, source: source(r.declaredAt) })),
      limits: e.limits.map((l) => ({ ...l, source: source(l.declaredAt) })),
    };
  }
}
