/**
 * The control API reads JSON bodies only, and says so before anything parses one. This also closes
 * the browser's side door: a web page can send text/plain, form and multipart bodies to any address
 * without asking first, but a JSON body makes the browser ask with a CORS preflight, which gatehouse
 * never approves.
 */

/** True when the request carries a body that is not declared as application/json. */
export function hasNonJsonBody(request: Request): boolean {
  return hasBody(request) && !isJson(request.headers.get("content-type"));
}

function hasBody(request: Request): boolean {
  if (request.headers.has("transfer-encoding")) return true;
  const length = request.headers.get("content-length");
  if (length !== null) return !/^0+$/.test(length.trim());
  // Only a request built in-process can have a body without either header.
  return request.body !== null;
}

/** `application/json`, with parameters (charset) allowed; the type is case-insensitive. */
function isJson(contentType: string | null): boolean {
  if (contentType === null) return false;
  const semicolon = contentType.indexOf(";");
  const essence = (semicolon < 0 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase();
  return essence === "application/json";
}
