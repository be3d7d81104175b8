/** The one boundary where refusals become RFC 9457 application/problem+json responses. */
import { type Refusal, refusalCodes } from "./refusal.ts";

/** The last part of a refusal's problem type (`rate-limited`); also its label value in /metrics. */
export const problemName = (code: string) => code.replace(/_/g, "-");
export const problemType = (code: string) => `urn:gatehouse:problem:${problemName(code)}`;

export function problemResponse(
  refusal: Refusal,
  requestId: string,
  extraHeaders?: ReadonlyMap<string, string>,
): Response {
  const { status, title } = refusalCodes[refusal.code];
  const body = JSON.stringify({
    type: problemType(refusal.code),
    title,
    status,
    detail: refusal.detail,
    request_id: requestId,
  });
  const headers = new Headers();
  if (extraHeaders) for (const [k, v] of extraHeaders) headers.set(k, v);
  headers.set("content-type", "application/problem+json");
  headers.set("x-request-id", requestId);
  headers.set("cache-control", "no-store");
  for (const [k, v] of Object.entries(refusal.headers)) headers.set(k, v);
  return new Response(body, { status, headers });
}
