/**
 * A key or token in the query string is neither accepted nor forwarded: parameters named like a key
 * or a token (Kong's jwt plugin reads `jwt`, OAuth `access_token`, OpenID Connect `id_token`), or
 * carrying the request's own credential, or holding a JWT under any name, are removed. Everything
 * else passes byte for byte.
 */
const keyParams = new Set([
  "api_key",
  "apikey",
  "api-key",
  "x-api-key",
  "access_token",
  "id_token",
  "refresh_token",
  "jwt",
]);

/**
 * A JWS compact serialization anywhere in a value (`Bearer eyJ...` too): its header is a JSON
 * object, so base64url `eyJ`, then two dots.
 */
const holdsJwt = /eyJ[\w-]*\.[\w-]*\.[\w-]*/;

function decoded(s: string): string {
  // Most names and values have nothing to decode; decodeURIComponent is the costly part.
  if (!s.includes("%") && !s.includes("+")) return s;
  try {
    return decodeURIComponent(s.replace(/\+/g, " "));
  } catch {
    return s;
  }
}

function carriesCredential(value: string, secret: string | null): boolean {
  return (secret !== null && value === secret) || (value.includes("eyJ") && holdsJwt.test(value));
}

export function forwardedQuery(query: string, secret: string | null): string {
  if (query === "") return "";
  let kept: string[] | null = null;
  const parts = query.split("&");
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    const eq = part.indexOf("=");
    const drop =
      part === "" ||
      keyParams.has(decoded(eq < 0 ? part : part.slice(0, eq)).toLowerCase()) ||
      (eq >= 0 && carriesCredential(decoded(part.slice(eq + 1)), secret));
    // Until something is dropped the query is forwarded as it came, without re-joining it.
    if (drop) kept ??= parts.slice(0, i);
    else kept?.push(part);
  }
  return kept === null ? query : kept.join("&");
}
