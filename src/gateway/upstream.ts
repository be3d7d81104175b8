import type { UpstreamDecl } from "../config/schema.ts";
import { parseDuration } from "../config/units.ts";
import type { CredentialValues } from "../vault/vault.ts";
import { compileMock, type MockBehaviour } from "./mock-upstream.ts";

/** A compiled upstream: where to send requests and what to add to them. */
export interface UpstreamTarget {
  readonly name: string;
  /** Base URL without a trailing slash; the canonical path is appended. Null for built-in mocks. */
  readonly baseUrl: string | null;
  /** A built-in upstream answered in-process, or null for a real one. */
  readonly mock: MockBehaviour | null;
  /** Injected into every request, vault credentials already in place; tenants never see these. */
  readonly headers: readonly (readonly [string, string])[];
  /** Names of the vault credentials the headers carry (never their values), for explain. */
  readonly credentials: readonly string[];
  /**
   * A credential the headers need that the vault cannot give (gone, or undecryptable): requests get
   * 502 and the name is logged. Null when every one is in place.
   */
  readonly unavailableCredential: string | null;
  readonly timeoutMs: number;
  readonly idleTimeoutMs: number;
  /** Most connections open to the upstream at once (the HTTP/1.1 client's pool). */
  readonly maxConnections: number;
  /** Whether requests carry X-Gatehouse-Context (tenant metadata and forwarded claims). */
  readonly tenantContext: boolean;
}

const DEFAULT_TIMEOUT = 30_000;
const DEFAULT_MAX_CONNECTIONS = 256;

/**
 * `override` replaces the credential the upstream's headers name (a tenant's `credentials:`); the
 * config and the control API allow it only on upstreams that inject exactly one.
 */
export function compileUpstream(
  name: string,
  d: UpstreamDecl,
  vault: CredentialValues,
  override?: string,
): UpstreamTarget {
  const timing = {
    timeoutMs: d.timeout ? parseDuration(d.timeout) : DEFAULT_TIMEOUT,
    idleTimeoutMs: d.idleTimeout ? parseDuration(d.idleTimeout) : DEFAULT_TIMEOUT,
    maxConnections: ("maxConnections" in d ? d.maxConnections : undefined) ?? DEFAULT_MAX_CONNECTIONS,
  };
  if ("mock" in d) {
    const mock = compileMock(d.mock);
    return {
      name,
      baseUrl: null,
      mock,
      headers: [],
      credentials: [],
      unavailableCredential: null,
      ...timing,
      tenantContext: d.tenantContext ?? false,
    };
  }
  const headers: [string, string][] = [];
  const credentials: string[] = [];
  let unavailableCredential: string | null = null;
  for (const [header, v] of Object.entries(d.headers ?? {})) {
    if (typeof v === "string") {
      headers.push([header.toLowerCase(), v]);
      continue;
    }
    const credential = override ?? v.credential;
    credentials.push(credential);
    const value = vault.value(credential);
    if (value === undefined) unavailableCredential ??= credential;
    // split/join, not replaceAll: a value may hold `$&` and kin, which replace patterns expand.
    else headers.push([header.toLowerCase(), (v.format ?? "{value}").split("{value}").join(value)]);
  }
  return {
    name,
    baseUrl: d.url.replace(/\/+$/, ""),
    mock: null,
    headers,
    credentials,
    unavailableCredential,
    ...timing,
    tenantContext: d.tenantContext ?? false,
  };
}
