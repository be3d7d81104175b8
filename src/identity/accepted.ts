/**
 * The credential sources a request may prove its tenant with: all of `identity:`, or those its
 * route lists. The route is looked up here, before authentication, only to choose among sources:
 * whatever it finds, a request that proves nothing gets the same 401 on every path.
 */
import { matches } from "../gateway/pattern.ts";
import type { CompiledRoute, Snapshot } from "../gateway/snapshot.ts";
import type { CompiledIdentity, JwtSource } from "./compile.ts";

export interface Accepted {
  readonly apiKeys: boolean;
  readonly jwt: readonly JwtSource[];
}

const restricted = new WeakMap<CompiledRoute, Accepted>();
const overrides = new WeakMap<readonly CompiledRoute[], boolean>();

export function acceptedSources(snapshot: Snapshot, method: string, segments: readonly string[]): Accepted {
  const { identity, routes } = snapshot;
  let any = overrides.get(routes);
  if (any === undefined) {
    any = routes.some((r) => r.identity !== null);
    overrides.set(routes, any);
  }
  if (!any) return identity;
  const route = routes.find((r) => matches(r.pattern, method, segments));
  if (!route?.identity) return identity;
  let accepted = restricted.get(route);
  if (!accepted) {
    accepted = only(identity, route.identity);
    restricted.set(route, accepted);
  }
  return accepted;
}

function only(identity: CompiledIdentity, names: ReadonlySet<string>): Accepted {
  return {
    apiKeys: identity.credentials.some((c) => c.kind === "apiKey" && names.has(c.name)),
    jwt: identity.jwt.filter((s) => names.has(s.name)),
  };
}
