import type { UpstreamDecl } from "../config/schema.ts";
import { parseDuration } from "../config/units.ts";
import { compileMock, type MockBehaviour } from "./mock-upstream.ts";

/** A compiled upstream: where to send requests and what to add to them. */
export interface UpstreamTarget {
  readonly name: string;
  /** Base URL without a trailing slash; the canonical path is appended. Null for built-in mocks. */
  readonly baseUrl: string | null;
  /** A built-in upstream answered in-process, or null for a real one. */
  readonly mock: MockBehaviour | null;
  /** Injected into every request; tenants never see these. */
  readonly headers: readonly (readonly [string, string])[];
  readonly timeoutMs: number;
  readonly idleTimeoutMs: number;
  /** Whether requests carry X-Gatehouse-Context (tenant metadata and forwarded claims). */
  readonly tenantContext: boolean;
}

const DEFAULT_TIMEOUT = 30_000;

export function compileUpstream(name: string, d: UpstreamDecl): UpstreamTarget {
  if ("mock" in d) {
    return {
      name,
      baseUrl: null,
      mock: compileMock(d.mock),
      headers: [],
      timeoutMs: d.timeout ? parseDuration(d.timeout) : DEFAULT_TIMEOUT,
      idleTimeoutMs: d.idleTimeout ? parseDuration(d.idleTimeout) : DEFAULT_TIMEOUT,
      tenantContext: d.tenantContext ?? false,
    };
  }
  return {
    name,
    baseUrl: d.url.replace(/\/+$/, ""),
    mock: null,
    headers: Object.entries(d.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v] as const),
    timeoutMs: d.timeout ? parseDuration(d.timeout) : DEFAULT_TIMEOUT,
    idleTimeoutMs: d.idleTimeout ? parseDuration(d.idleTimeout) : DEFAULT_TIMEOUT,
    tenantContext: d.tenantContext ?? false,
  };
}
