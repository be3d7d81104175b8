/**
 * POST /explain: the data plane's decision for a request made as a key (or as a new key of a
 * tenant), with where each rule, route and limit involved is declared. Knows nothing of HTTP.
 */
import { eq } from "drizzle-orm";
import type { LoadedConfig } from "../../config/load.ts";
import { apiKeys, tenants } from "../../db/schema.ts";
import {
  type ExplainPolicies,
  type Explanation,
  explainRequest,
  identityOfKey,
  identityOfTenant,
  identityOfToken,
} from "../../explain/explain.ts";
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

/** Where a declaration lives: "gateway.yaml:15", "control API", or null when that cannot be told. */
type Source = string | null;

export type ExplainAnswer = Explanation & {
  route: (NonNullable<Explanation["route"]> & { source: Source }) | null;
  rules: (Explanation["rules"][number] & { source: Source })[];
  limits: (Explanation["limits"][number] & { source: Source })[];
};

const CONTROL_API = "control API";

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
    const e = explainRequest(snapshot, clock, this.policies, {
      method: body.method,
      target: body.path,
      headers: new Headers(body.headers ?? {}),
      identity,
    });
    const source = this.sources();
    return {
      ...e,
      route: e.route && { ...e.route, source: source(e.route.declaredAt) },
      rules: e.rules.map((r) => ({ ...r, source: source(r.declaredAt) })),
      limits: e.limits.map((l) => ({ ...l, source: source(l.declaredAt) })),
    };
  }

  /** Locates `declaredAt` paths: in the config file while it still holds the config in force. */
  private sources(): (declaredAt: string) => Source {
    let loaded: LoadedConfig | null | undefined;
    const file = () => {
      if (loaded === undefined) loaded = this.store.state.rereadInForce();
      return loaded;
    };
    const db = this.store.database.db;
    const fromFile = (path: (string | number)[]) => file()?.sourceRef(path) ?? null;
    return (at) => {
      let m = /^(routes)\[(\d+)\]$/.exec(at);
      if (m) return fromFile(["routes", Number(m[2])]);
      m = /^plans\.(.+?)\.(rules|limits)\[(\d+)\]$/.exec(at);
      if (m) return fromFile(["plans", m[1]!, m[2]!, Number(m[3])]);
      m = /^plans\.(.+?)\.quota$/.exec(at);
      if (m) return fromFile(["plans", m[1]!, "quota"]);
      m = /^tenants\.(.+?)\.keys\[(.+)\]\.(?:(rules|limits)\[(\d+)\]|(quota))$/.exec(at);
      if (m) {
        const [, tenantId, keyId, list, index, quota] = m as unknown as string[];
        const row = db.select({ source: apiKeys.source }).from(apiKeys).where(eq(apiKeys.id, keyId!)).get();
        if (row?.source === "api") return CONTROL_API;
        const i = file()?.config.tenants?.[tenantId!]?.keys?.findIndex((k) => k.id === keyId) ?? -1;
        if (i < 0) return null;
        return fromFile(["tenants", tenantId!, "keys", i, ...(quota ? ["quota"] : [list!, Number(index)])]);
      }
      m = /^tenants\.(.+?)\.(?:(rules|limits)\[(\d+)\]|(quota))$/.exec(at);
      if (m) {
        const [, tenantId, list, index, quota] = m as unknown as string[];
        const row = db
          .select({ source: tenants.source })
          .from(tenants)
          .where(eq(tenants.id, tenantId!))
          .get();
        if (row?.source === "api") return CONTROL_API;
        return fromFile(["tenants", tenantId!, ...(quota ? ["quota"] : [list!, Number(index)])]);
      }
      return null;
    };
  }
}
