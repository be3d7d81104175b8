/**
 * A key in the query string is neither accepted nor forwarded: parameters named like a key, or
 * carrying the request's own key, are removed. Everything else passes byte for byte.
 */
const keyParams = new Set(["api_key", "apikey", "api-key", "x-api-key", "access_token"]);

function decoded(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, " "));
  } catch {
    return s;
  }
}

export function forwardedQuery(query: string, secret: string | null): string {
  if (query === "") return "";
  const kept: string[] = [];
  for (const part of query.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const name = decoded(eq < 0 ? part : part.slice(0, eq)).toLowerCase();
    if (keyParams.has(name)) continue;
    if (secret !== null && eq >= 0 && decoded(part.slice(eq + 1)) === secret) continue;
    kept.push(part);
  }
  return kept.join("&");
}
