/** What limits refusals say, shared by the in-process policy and the one deciding in Redis. */
import type { CompiledLimit, CompiledQuota } from "../../gateway/snapshot.ts";
import { ceilSeconds, formatWindow } from "./headers.ts";

const per = (limit: CompiledLimit) => `${limit.limit} per ${formatWindow(limit.windowMs)}`;

export const limitNeverFits = (limit: CompiledLimit, cost: number) =>
  `This request costs ${cost} units, more than rate limit "${limit.name}" allows (${per(limit)}); it can never be admitted.`;

export const quotaNeverFits = (q: CompiledQuota, cost: number) =>
  `This request costs ${cost} units, more than quota "${q.name}" allows (${q.limit} per ${q.period}); it can never be admitted.`;

export const limitReached = (limit: CompiledLimit) => `Rate limit "${limit.name}" (${per(limit)}) reached`;

export const quotaUsedUp = (q: CompiledQuota) => `Quota "${q.name}" (${q.limit} per ${q.period}) used up`;

export const retryIn = (binding: string, waitMs: number) => `${binding}; retry in ${ceilSeconds(waitMs)} s.`;

export const tooManyInFlight = (cap: number) => `At most ${cap} requests may be in flight at once.`;
