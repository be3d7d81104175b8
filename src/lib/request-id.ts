/**
 * Request ids, on both listeners. A client's own `X-Request-Id` is kept when it is a safe token, so
 * one id follows a request through the client's logs, gatehouse's answer, the upstream and the usage
 * row; anything else is replaced by a generated UUIDv7.
 *
 * Safe means at most 64 characters of [A-Za-z0-9._-]: nothing that could split a header, a log line,
 * a CSV field or a YAML scalar, and short enough to store in every usage row. An id is a label, never
 * a key: nothing in gatehouse looks a request up by it or requires it to be unique (usage rows are
 * keyed by their own row id), so a client that reuses an id, even one another client used, only
 * labels its own requests with it.
 */

const SAFE_ID = /^[A-Za-z0-9._-]{1,64}$/;

export const isSafeRequestId = (id: string): boolean => SAFE_ID.test(id);

/** The client's X-Request-Id when it is safe, else a new UUIDv7. */
export function requestIdFor(headers: Headers): string {
  const sent = headers.get("x-request-id");
  return sent !== null && SAFE_ID.test(sent) ? sent : Bun.randomUUIDv7();
}
