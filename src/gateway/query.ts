/**
 * A key in the query string is neither accepted nor forwarded: parameters named like a key, or
 * carrying the request's own key, are removed. Everything else passes byte for byte.
 */
const keyParams = new Set(["api_key", "apikey", "api-key", "x-api-key", "access_token"]);

function decoded(s: string): string {
  // Most names and values have nothing to decode; decodeURIComponent is the costly part.
  if (!s.includes("%") && !s.includes("+")) return s;
  try {
    return decodeURIComponent(s.replace(/\+/g, " "));
  } catch {
    return s;
  }
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
      (secret !== null && eq >= 0 && decoded(part.slice(eq + 1)) === secret);
    // Until something is dropped the query is forwarded as it came, without re-joining it.
    if (drop) kept ??= parts.slice(0, i);
    else kept?.push(part);
  }
  return kept === null ? query : kept.join("&");
}
