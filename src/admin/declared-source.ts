/**
 * Where a declaration in force lives, from its `declaredAt` config path (`plans.free.limits[0]`,
 * `tenants.acme.keys[acme-dev].quota`, `routes[2]`): "gateway.yaml:15" while the config file still
 * holds the config in force, "control API" for what was made there, null when it cannot be told.
 */

import { basename } from "node:path";
import { eq } from "drizzle-orm";
import type { LoadedConfig } from "../config/load.ts";
import { lineKey } from "../config/locator.ts";
import { apiKeys, tenants } from "../db/schema.ts";
import type { AdminStore } from "./store.ts";

export type Source = string | null;

export const CONTROL_API = "control API";

/** Who declares a policy item: the tenant's plan, the tenant, or the key. */
export type Origin = "plan" | "tenant" | "key";

export function originOf(declaredAt: string): Origin {
  if (declaredAt.startsWith("plans.")) return "plan";
  return /\.keys\[[^\]]+\]\./.test(declaredAt) ? "key" : "tenant";
}

/**
 * The lines of the config in force, by its hash. Finding positions means parsing the file with them
 * (about 200 ms for 10,000 keys), while checking that the file still holds the config in force takes
 * a quick parse and its hash (about 13 ms); the lines hold no value from the file.
 */
const linesByHash = new WeakMap<AdminStore, { hash: string; lines: Map<string, number> }>();

function lineOf(store: AdminStore, loaded: LoadedConfig, path: readonly (string | number)[]): number {
  let cached = linesByHash.get(store);
  if (cached?.hash !== loaded.hash) {
    cached = { hash: loaded.hash, lines: loaded.sourceLines() };
    linesByHash.set(store, cached);
  }
  // As Locator.at: a path the file does not spell out is placed at its nearest parent that it does.
  for (let n = path.length; n > 0; n--) {
    const line = cached.lines.get(lineKey(path.slice(0, n)));
    if (line !== undefined) return line;
  }
  return 1;
}

/** A locator for one answer: the file is re-read at most once, and only when something is in it. */
export function sourceLocator(store: AdminStore): (declaredAt: string) => Source {
  let loaded: LoadedConfig | null | undefined;
  const file = () => {
    if (loaded === undefined) loaded = store.state.rereadInForce();
    return loaded;
  };
  const db = store.database.db;
  const fromFile = (path: (string | number)[]) => {
    const f = file();
    return f ? `${basename(f.file)}:${lineOf(store, f, path)}` : null;
  };
  /** `rules[3]` or `quota` as a config path's tail. */
  const tail = (list: string | undefined, index: string | undefined, single: string | undefined) =>
    single ? [single] : [list!, Number(index)];
  return (at) => {
    let m = /^routes\[(\d+)\]$/.exec(at);
    if (m) return fromFile(["routes", Number(m[1])]);
    m = /^plans\.(.+?)(?:\.(rules|limits)\[(\d+)\]|\.(quota|concurrency))?$/.exec(at);
    if (m) {
      const [, plan, list, index, single] = m;
      return fromFile(["plans", plan!, ...(list || single ? tail(list, index, single) : [])]);
    }
    m = /^tenants\.(.+?)\.keys\[(.+)\]\.(?:(rules|limits)\[(\d+)\]|(quota))$/.exec(at);
    if (m) {
      const [, tenantId, keyId, list, index, single] = m;
      const row = db.select({ source: apiKeys.source }).from(apiKeys).where(eq(apiKeys.id, keyId!)).get();
      if (row?.source === "api") return CONTROL_API;
      const i = file()?.config.tenants?.[tenantId!]?.keys?.findIndex((k) => k.id === keyId) ?? -1;
      if (i < 0) return null;
      return fromFile(["tenants", tenantId!, "keys", i, ...tail(list, index, single)]);
    }
    m = /^tenants\.(.+?)\.(?:(rules|limits)\[(\d+)\]|(quota|concurrency))$/.exec(at);
    if (m) {
      const [, tenantId, list, index, single] = m;
      const row = db.select({ source: tenants.source }).from(tenants).where(eq(tenants.id, tenantId!)).get();
      if (row?.source === "api") return CONTROL_API;
      return fromFile(["tenants", tenantId!, ...tail(list, index, single)]);
    }
    return null;
  };
}
