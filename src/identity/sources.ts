/** Names of identity sources, as routes and usage rows refer to them. */
import type { IdentitySourceDecl } from "./schema.ts";

/** A source's name: its own `name:` for credential sources, else its kind. */
export function sourceName(s: IdentitySourceDecl): string {
  if ("apiKey" in s) return s.apiKey.name ?? "apiKey";
  if ("jwt" in s) return s.jwt.name ?? "jwt";
  return Object.keys(s)[0]!;
}

/** What a config without `identity:` means: API keys, exactly as before identity sources existed. */
export const DEFAULT_IDENTITY: readonly IdentitySourceDecl[] = [{ apiKey: {} }];
