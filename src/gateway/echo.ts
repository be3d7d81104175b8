/**
 * The built-in `mock: echo` upstream: answers with the request it received, as JSON, so a developer
 * can see exactly what gatehouse forwards (and tests can assert it).
 */
export async function echo(
  upstream: string,
  method: string,
  pathAndQuery: string,
  headers: Headers,
  body: ReadableStream | null,
) {
  const q = pathAndQuery.indexOf("?");
  const text = body ? await new Response(body).text() : "";
  const payload = {
    upstream,
    method,
    path: q < 0 ? pathAndQuery : pathAndQuery.slice(0, q),
    query: q < 0 ? "" : pathAndQuery.slice(q + 1),
    headers: Object.fromEntries(headers),
    body: text,
  };
  return new Response(JSON.stringify(payload, null, 2), { headers: { "content-type": "application/json" } });
}
