/**
 * What a tenant sees of its own objects: its keys without the operator's labels and file positions,
 * and its limits and quotas with who set them (its plan, or its own) but not where in which file.
 */

import type { Static } from "@sinclair/typebox";
import type { Key } from "../../admin/keys/service.ts";
import type { EffectivePolicy } from "../../admin/policy/model.ts";
import type { QuotaState } from "../../admin/quota/model.ts";

export interface PortalKey {
  id: string;
  name: string | null;
  prefix: string;
  last4: string;
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  disabled: boolean;
  previousSecretValidUntil: string | null;
  /** Keys from the config file are the operator's: the portal shows them but cannot change them. */
  managed: boolean;
}

export function portalKey(k: Key): PortalKey {
  return {
    id: k.id,
    name: k.name,
    prefix: k.prefix,
    last4: k.last4,
    createdAt: k.createdAt,
    expiresAt: k.expiresAt,
    lastUsedAt: k.lastUsedAt,
    disabled: k.disabled,
    previousSecretValidUntil: k.previousSecretValidUntil,
    managed: k.source === "api",
  };
}

export function portalPolicy(p: Static<typeof EffectivePolicy>) {
  return {
    tenant: p.tenant,
    plan: p.plan,
    limits: p.limits.map(({ name, limit, window, by, origin }) => ({ name, limit, window, by, origin })),
    quotas: p.quotas.map(({ name, limit, period, by, origin }) => ({ name, limit, period, by, origin })),
    concurrency: p.concurrency ? { limit: p.concurrency.limit, origin: p.concurrency.origin } : null,
  };
}

export function portalQuota(q: Static<typeof QuotaState>) {
  return {
    tenant: q.tenant,
    quotas: q.quotas.map(({ name, limit, period, used, remaining, periodStart, resetsAt, origin }) => ({
      name,
      limit,
      period,
      used,
      remaining,
      periodStart,
      resetsAt,
      origin,
    })),
  };
}
