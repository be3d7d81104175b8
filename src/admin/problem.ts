/**
 * Every control API error is RFC 9457 application/problem+json with the same `type` namespace as the
 * data plane. Services throw AdminProblem; the app's error hook turns it (and Elysia's own errors)
 * into a response, so no route builds error bodies by hand.
 */
import { Type as T, type TSchema } from "@sinclair/typebox";
import { problemType } from "../gateway/problem.ts";

const titles: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  409: "Conflict",
  413: "Payload Too Large",
  415: "Unsupported Media Type",
  421: "Misdirected Request",
  422: "Unprocessable Content",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

export class AdminProblem extends Error {
  constructor(
    readonly status: number,
    /** Becomes the `type`: urn:gatehouse:problem:<code>. */
    readonly code: string,
    /** Shown to the client: never a secret, hash or token. */
    readonly detail: string,
    readonly extra: { errors?: string[] } = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
    this.name = "AdminProblem";
  }
}

export const badRequest = (detail: string, errors?: string[]) =>
  new AdminProblem(400, "bad_request", detail, errors ? { errors } : {});
export const notFound = (detail: string) => new AdminProblem(404, "not_found", detail);
export const conflict = (detail: string) => new AdminProblem(409, "conflict", detail);
/** The database refuses writes (locked, full, read-only, file removed): nothing was changed. */
export const storeUnavailable = (detail: string) =>
  new AdminProblem(503, "store_unavailable", detail, {}, { "retry-after": "5" });

/** The body of a problem; `requestId` is the answer's X-Request-Id (see request-id.ts). */
export function problemBody(p: AdminProblem, requestId: string) {
  return {
    type: problemType(p.code),
    title: titles[p.status] ?? "Error",
    status: p.status,
    detail: p.detail,
    request_id: requestId,
    ...p.extra,
  };
}

export function problemResponse(p: AdminProblem, requestId: string): Response {
  const body = problemBody(p, requestId);
  return new Response(JSON.stringify(body), {
    status: p.status,
    headers: {
      "content-type": "application/problem+json",
      "cache-control": "no-store",
      "x-request-id": requestId,
      ...p.headers,
    },
  });
}

export const Problem = T.Object(
  {
    type: T.String({
      description: "urn:gatehouse:problem:<code>",
      examples: ["urn:gatehouse:problem:conflict"],
    }),
    title: T.String(),
    status: T.Integer(),
    detail: T.String(),
    request_id: T.String({ description: "The answer's X-Request-Id: quote it when reporting a problem." }),
    errors: T.Optional(T.Array(T.String(), { description: "Each problem found, where there are several." })),
  },
  { description: "RFC 9457 problem details, sent as application/problem+json." },
);

/**
 * The responses of one route for the spec: its own, plus the problems every route can answer with
 * (401 and 429 from the guard, 500 for a bug).
 */
export function responses(own: Record<number, TSchema>, problems: number[] = []): Record<number, TSchema> {
  const out: Record<number, TSchema> = { ...own };
  for (const status of [...problems, 401, 429, 500]) {
    out[status] = T.Object(Problem.properties, { description: `${titles[status]} (problem+json)` });
  }
  return out;
}
