/**
 * GET /usage (reports) and GET /usage/export (streamed CSV/NDJSON) for the control API. The controller
 * only parses and maps: every question is answered by the UsageService, which knows nothing of HTTP.
 * Problems are returned, not thrown, so they come out the same under any host app's error hook.
 */
import { Elysia, type ValidationError } from "elysia";
import { parseInstant } from "../../lib/instant.ts";
import type { Log } from "../../lib/log.ts";
import { contentTypes } from "../../usage/format.ts";
import { UsageQueryError, UsageUnavailableError } from "../../usage/query.ts";
import type { UsageReads } from "../../usage/service.ts";
import { validationProblem } from "../errors.ts";
import { sanitize } from "../fields.ts";
import { AdminProblem, badRequest, problemResponse, responses, storeUnavailable } from "../problem.ts";
import { requestIdOf } from "../request-id.ts";
import { ExportBody, ExportQueryParams, UsageQueryParams, UsageReport } from "./model.ts";

export interface UsagePluginDeps {
  usage: UsageReads;
  log?: Log;
}

const refuse = (request: Request, detail: string) =>
  problemResponse(badRequest(detail), requestIdOf(request));

/** A query refused (400), or the database that holds usage cannot answer now (503); else undefined. */
function expected(request: Request, err: unknown): Response | undefined {
  if (err instanceof UsageQueryError) return refuse(request, err.message);
  if (err instanceof UsageUnavailableError) {
    return problemResponse(storeUnavailable(err.message), requestIdOf(request));
  }
  return undefined;
}

/**
 * Hosts that normalize queries drop unknown parameters before validation instead of refusing them, and
 * a repeated parameter silently keeps one value; a misspelt `tenat=` would then widen a report to every
 * tenant. Checked here, whatever the host.
 */
function strayParameter(request: Request, schema: { properties: Record<string, unknown> }): string | null {
  const seen = new Set<string>();
  for (const name of new URL(request.url).searchParams.keys()) {
    if (!Object.hasOwn(schema.properties, name)) {
      return `Unknown query parameter "${sanitize(name).replaceAll('"', "?")}"; allowed: ${Object.keys(schema.properties).join(", ")}.`;
    }
    if (seen.has(name)) return `The query parameter ${name} is given more than once.`;
    seen.add(name);
  }
  return null;
}

const INSTANT_RULE =
  "must be an RFC 3339 date-time with an offset (2026-01-01T00:00:00Z) or epoch milliseconds";

type Range = { from: number; to: number } | { error: string };

function range(usage: UsageReads, q: { from?: string | undefined; to?: string | undefined }): Range {
  const from = q.from === undefined ? undefined : parseInstant(q.from);
  const to = q.to === undefined ? undefined : parseInstant(q.to);
  if (from === null) return { error: `The query parameter from ${INSTANT_RULE}; this date does not exist.` };
  if (to === null) return { error: `The query parameter to ${INSTANT_RULE}; this date does not exist.` };
  return usage.resolveRange(from, to);
}

const tags = ["usage"];

export function usagePlugin(deps: UsagePluginDeps) {
  const { usage } = deps;
  return new Elysia({ normalize: false })
    .onError(({ code, error, request }) => {
      if (code === "VALIDATION" && error.type !== "response") {
        return problemResponse(validationProblem(error as ValidationError, request), requestIdOf(request));
      }
      if (code === "NOT_FOUND") return;
      deps.log?.("error", "usage API error", { error: error instanceof Error ? error.stack : String(error) });
      return problemResponse(
        new AdminProblem(500, "internal_error", "The usage request failed."),
        requestIdOf(request),
      );
    })
    .get(
      "/usage",
      async ({ query, request, set }) => {
        set.headers["cache-control"] = "no-store";
        const stray = strayParameter(request, UsageQueryParams);
        const r = stray ? { error: stray } : range(usage, query);
        if ("error" in r) return refuse(request, r.error);
        try {
          return await usage.queryUsage({
            tenant: query.tenant,
            from: r.from,
            to: r.to,
            groupBy: query.groupBy ?? "hour",
          });
        } catch (err) {
          const answer = expected(request, err);
          if (answer) return answer;
          throw err;
        }
      },
      {
        query: UsageQueryParams,
        response: responses({ 200: UsageReport }, [400, 503]),
        detail: {
          summary: "Usage report",
          operationId: "getUsage",
          description:
            "Requests, errors, cost units, bytes and latency percentiles per route, key, status or UTC " +
            "time bucket over [from, to). Read from per-minute and per-hour rollups plus the raw rows of " +
            "the partial minutes at either end, so the answer is exact and its cost grows with the " +
            "length of the range, not the number of requests. In cluster mode every node's rows are read " +
            "from PostgreSQL (503 while it cannot be reached).",
          tags,
        },
      },
    )
    .get(
      "/usage/export",
      async ({ query, request, set }) => {
        set.headers["cache-control"] = "no-store";
        const stray = strayParameter(request, ExportQueryParams);
        const r = stray ? { error: stray } : range(usage, query);
        if ("error" in r) return refuse(request, r.error);
        const format = query.format ?? "csv";
        const granularity = query.granularity ?? "raw";
        let body: ReadableStream<Uint8Array>;
        try {
          body = await usage.exportUsage({
            format,
            granularity,
            tenant: query.tenant,
            from: r.from,
            to: r.to,
          });
        } catch (err) {
          const answer = expected(request, err);
          if (answer) return answer;
          throw err;
        }
        return new Response(body, {
          headers: {
            "content-type": contentTypes[format],
            "content-disposition": `attachment; filename="usage-${granularity}.${format}"`,
            "cache-control": "no-store",
          },
        });
      },
      {
        query: ExportQueryParams,
        response: responses({ 200: ExportBody }, [400, 503]),
        detail: {
          summary: "Export usage",
          operationId: "exportUsage",
          description:
            "Streams raw usage rows, or totals per tenant and UTC hour, day or month, as CSV or NDJSON, " +
            "for billing pipelines. Memory stays flat whatever the size. Rows are ordered by time; export " +
            "closed periods, since rows reach the database up to usage.flushInterval after a request ends " +
            "(in cluster mode, PostgreSQL a little later: 503 while it cannot be reached).",
          tags,
        },
      },
    );
}
