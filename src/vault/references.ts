/**
 * Where the config refers to vault credentials: upstream headers (`{ credential, format }`) and
 * tenants' `credentials:` overrides. Only names ever pass through here, never values.
 */
import type { ConfigIssue } from "../config/errors.ts";
import type { LoadedConfig } from "../config/load.ts";
import type { CredentialHeaderDecl, GatewayConfig, UpstreamDecl } from "../config/schema.ts";

type Path = (string | number)[];

/** The headers of an upstream that inject a credential, as [header name, declaration]. */
export function credentialHeaders(u: UpstreamDecl | undefined): [string, CredentialHeaderDecl][] {
  if (!u || !("url" in u) || !u.headers) return [];
  return Object.entries(u.headers).filter(
    (e): e is [string, CredentialHeaderDecl] => typeof e[1] !== "string",
  );
}

/** Why no tenant can replace the credential of upstream `name`, or null when one can. */
export function overrideProblem(config: Pick<GatewayConfig, "upstreams">, name: string): string | null {
  const u = config.upstreams[name];
  if (!u) return `no upstream named "${name}"`;
  const count = credentialHeaders(u).length;
  if (count === 1) return null;
  return count === 0
    ? `upstream "${name}" injects no credential, so there is none to replace`
    : `upstream "${name}" injects ${count} credentials; a tenant override replaces exactly one`;
}

export const OVERRIDE_HINT =
  "override an upstream whose headers have one { credential: ... } entry, e.g. authorization";

/** Every credential the file names, with where. */
export function credentialReferences(config: GatewayConfig): { path: Path; name: string }[] {
  const refs: { path: Path; name: string }[] = [];
  for (const [name, u] of Object.entries(config.upstreams)) {
    for (const [header, h] of credentialHeaders(u)) {
      refs.push({ path: ["upstreams", name, "headers", header, "credential"], name: h.credential });
    }
  }
  for (const [id, t] of Object.entries(config.tenants ?? {})) {
    for (const [upstream, credential] of Object.entries(t.credentials ?? {})) {
      refs.push({ path: ["tenants", id, "credentials", upstream], name: credential });
    }
  }
  return refs;
}

/** Credentials the file refers to that the vault does not hold: a located error each. */
export function missingCredentials(loaded: LoadedConfig, exists: (name: string) => boolean): ConfigIssue[] {
  return credentialReferences(loaded.config)
    .filter((r) => !exists(r.name))
    .map((r) =>
      loaded.issue(
        r.path,
        `no credential named "${r.name}" is stored`,
        `credentials live encrypted in the database, never in this file: store it with PUT /credentials/${r.name} ` +
          "on the control API (while the config in force does not name it yet), then load this config",
      ),
    );
}

/** What uses one credential: upstream headers of the config in force, and tenants' overrides. */
export interface CredentialUsers {
  upstreams: { upstream: string; header: string }[];
  tenants: { tenant: string; upstream: string }[];
}

export function usersOf(
  name: string,
  config: Pick<GatewayConfig, "upstreams">,
  tenantOverrides: Iterable<{ id: string; credentials: Record<string, string> }>,
): CredentialUsers {
  const users: CredentialUsers = { upstreams: [], tenants: [] };
  for (const [upstream, u] of Object.entries(config.upstreams)) {
    for (const [header, h] of credentialHeaders(u)) {
      if (h.credential === name) users.upstreams.push({ upstream, header: header.toLowerCase() });
    }
  }
  for (const t of tenantOverrides) {
    for (const [upstream, credential] of Object.entries(t.credentials)) {
      if (credential === name) users.tenants.push({ tenant: t.id, upstream });
    }
  }
  return users;
}

export const inUse = (u: CredentialUsers) => u.upstreams.length + u.tenants.length > 0;

export function describeUsers(u: CredentialUsers): string {
  return [
    ...u.upstreams.map((x) => `upstream "${x.upstream}" (header ${x.header})`),
    ...u.tenants.map((x) => `tenant "${x.tenant}" (for upstream "${x.upstream}")`),
  ].join(", ");
}
