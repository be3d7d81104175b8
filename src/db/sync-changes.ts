/**
 * What a sync changed, listed in its audit entry. Tenants and keys are compared row by row; plans,
 * routes (named by their pattern, unique in a valid file) and upstreams against fingerprints of the
 * previous sync kept in the meta table. Fingerprints, not the declarations themselves, because
 * upstream headers hold credentials that must not reach the database file.
 */
import { createHash } from "node:crypto";
import type { GatewayConfig } from "../config/schema.ts";

export interface PartChanges {
  added: string[];
  changed: string[];
  removed: string[];
}

export interface ObjectChanges {
  added: string[];
  /** id → the gateway.yaml fields that changed. */
  changed: Record<string, string[]>;
  removed: string[];
  /** API-made objects the file now declares, exactly as they were. */
  adopted: string[];
}

export interface SyncChanges {
  tenants: ObjectChanges;
  keys: ObjectChanges;
  plans: PartChanges;
  routes: PartChanges;
  upstreams: PartChanges;
}

/** Name → fingerprint of each plan, route and upstream the file declares. */
export interface Parts {
  plans: Record<string, string>;
  routes: Record<string, string>;
  upstreams: Record<string, string>;
}

/** JSON with object keys sorted, so reordering keys in the file changes no fingerprint. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v !== null && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

const fingerprint = (value: unknown) =>
  createHash("sha256").update(canonicalJson(value)).digest("hex").slice(0, 16);

export function partsOf(config: GatewayConfig): Parts {
  const each = (entries: [string, unknown][]) =>
    Object.fromEntries(entries.map(([name, v]) => [name, fingerprint(v)]));
  return {
    plans: each(Object.entries(config.plans)),
    routes: each(config.routes.map((r) => [r.match, r])),
    upstreams: each(Object.entries(config.upstreams)),
  };
}

function diff(before: Record<string, string>, after: Record<string, string>): PartChanges {
  const names = Object.keys(after);
  return {
    added: names.filter((n) => before[n] === undefined),
    changed: names.filter((n) => before[n] !== undefined && before[n] !== after[n]),
    removed: Object.keys(before).filter((n) => after[n] === undefined),
  };
}

/** With nothing synced before, everything is added. */
export function diffParts(before: Parts | undefined, after: Parts): Pick<SyncChanges, keyof Parts> {
  const none: Parts = { plans: {}, routes: {}, upstreams: {} };
  const b = before ?? none;
  return {
    plans: diff(b.plans, after.plans),
    routes: diff(b.routes, after.routes),
    upstreams: diff(b.upstreams, after.upstreams),
  };
}
