/**
 * The control API's request ids: chosen once per request (the client's X-Request-Id when it is a safe
 * token, see lib/request-id.ts), sent back in X-Request-Id on every answer and as `request_id` in
 * every problem, whichever hook or route builds it.
 */
import { requestIdFor } from "../lib/request-id.ts";

const ids = new WeakMap<Request, string>();

export function requestIdOf(request: Request): string {
  let id = ids.get(request);
  if (id === undefined) {
    id = requestIdFor(request.headers);
    ids.set(request, id);
  }
  return id;
}

/** The first onRequest hook: every answer, early refusals included, carries the id. */
export function tagRequestId({
  request,
  set,
}: {
  request: Request;
  set: { headers: Record<string, unknown> };
}) {
  set.headers["x-request-id"] = requestIdOf(request);
}
