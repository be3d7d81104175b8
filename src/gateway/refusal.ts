/**
 * Expected refusals: one error type with a closed list of codes, turned into problem+json at one
 * boundary (see problem.ts). Policies return these; nothing else decides a status code.
 */
export const refusalCodes = {
  bad_request: { status: 400, title: "Bad Request" },
  unauthorized: { status: 401, title: "Unauthorized" },
  forbidden: { status: 403, title: "Forbidden" },
  not_found: { status: 404, title: "Not Found" },
  method_not_allowed: { status: 405, title: "Method Not Allowed" },
  payload_too_large: { status: 413, title: "Payload Too Large" },
  rate_limited: { status: 429, title: "Rate Limited" },
  quota_exhausted: { status: 429, title: "Quota Exhausted" },
  concurrency_limited: { status: 429, title: "Too Many Concurrent Requests" },
  bad_gateway: { status: 502, title: "Bad Gateway" },
  gateway_timeout: { status: 504, title: "Gateway Timeout" },
  service_unavailable: { status: 503, title: "Service Unavailable" },
  /** A bug, not a decision: logged with the request id and answered without detail. */
  internal_error: { status: 500, title: "Internal Server Error" },
} as const;

export type RefusalCode = keyof typeof refusalCodes;

export class Refusal {
  constructor(
    readonly code: RefusalCode,
    /** Safe to show the client: never a key, an upstream URL or a credential. */
    readonly detail: string,
    /** Extra response headers, e.g. Retry-After. */
    readonly headers: Record<string, string> = {},
  ) {}

  get status(): number {
    return refusalCodes[this.code].status;
  }
}
