/**
 * GET /usage (reports) and GET /usage/export (streamed CSV/NDJSON) for the control API. The controller
 * only parses and maps: every question is answered by the UsageService, which knows nothing of HTTP.
 * Problems are returned, not thrown, so they come out the same under any host app's error hook.
 */
import { Elysia, type Static } from "elysia";
import { problemType } from "../../gateway/problem.ts";
import { parseInstant } from "../../lib/instant.ts";
import type { Log } from "../../lib/log.ts";
import { contentTypes } from "../../usage/format.ts";
import { UsageQueryError } from "../../usage/query.ts";
import type { UsageService } from "../../usage/service.ts";
import {
  ErrorResponses,
  ExportBody,
  ExportQueryParams,
  type Problem,
  UsageQueryParams,
  UsageReport,
} from "./model.ts";

export interface UsagePluginDeps {
  usage: UsageService;
  log?: Log;
}

type ProblemBody = Static<typeof Problem>;

const titles: Record<number, string> = { 400: "Bad Request", 500: "Internal Server Error" };

function problem(status: 400 | 500, detail: string): ProblemBody {
  return {
    type: problemType(status === 400 ? "bad_request" : "internal_error"),
    title: titles[status]!,
    status,
    detail,
  };
}

const problemHeaders = { "content-type": "application/problem+json", "cache-control": "no-store" };

const problemResponse = (p: ProblemBody) =>
  new Response(JSON.stringify(p), { status: p.status, headers: problemHeaders });

/**
 * Hosts that normalize queries drop unknown parameters before validation instead of refusing them, and
 * a repeated parameter silently keeps one value; a misspelt `tenat=` would then widen a report to every
 * tenant. Checked here, whatever the host.
 */
function strayParameter(request: Request, schema: { properties: Record<string, unknown> }): string | null {
  const seen = new Set<string>();
  for (const name of new URL(request.url).searchParams.keys()) {
    if (!Object.hasOwn(schema.properties, name)) return `Unknown query parameter "${clip(name)}".`;
    if (seen.has(name)) return `The query parameter ${name} is given more than once.`;
    seen.add(name);
  }
  return null;
}

const INSTANT_RULE =
  "must be an RFC 3339 date-time with an offset (2026-01-01T00:00:00Z) or epoch milliseconds";
const rules: Record<string, string> = { from: INSTANT_RULE, to: INSTANT_RULE, tenant: "must be a tenant id" };

/** What a query parameter must look like, in words rather than regular expressions. */
function ruleFor(name: string, schema: unknown, fallback: string): string {
  const values = (schema as { enum?: unknown[] } | undefined)?.enum;
  if (Array.isArray(values)) return `must be one of ${values.join(", ")}`;
  return rules[name] ?? fallback;
}

type Range = { from: number; to: number } | { error: string };

function range(usage: UsageService, q: { from?: string | undefined; to?: string | undefined }): Range {
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
    .onError(({ code, error }) => {
      if (code === "VALIDATION" && error.type !== "response") {
        const first = error.valueError;
        const name = first?.path?.slice(1) ?? "";
        const detail = name
          ? `The ${error.type} parameter ${clip(name)} ${ruleFor(name, first?.schema, `is invalid: ${first?.message}`)}.`
          : `The request ${error.type} is invalid.`;
        return problemResponse(problem(400, detail));
      }
      if (code === "NOT_FOUND") return;
      deps.log?.("error", "usage API error", { error: error instanceof Error ? error.stack : String(error) });
      return problemResponse(problem(500, "The usage request failed."));
    })
    .get(
      "/usage",
      ({ query, request, set, status }) => {
        set.headers["cache-control"] = "no-store";
        const stray = strayParameter(request, UsageQueryParams);
        const r = stray ? { error: stray } : range(usage, query);
        if ("error" in r) return fail(set, status(400, problem(400, r.error)));
        try {
          return usage.queryUsage({
            tenant: query.tenant,
            from: r.from,
            to: r.to,
            groupBy: query.groupBy ?? "hour",
          });
        } catch (err) {
          if (err instanceof UsageQueryError) return fail(set, status(400, problem(400, err.message)));
          throw err;
        }
      },
      {
        query: UsageQueryParams,
        response: { 200: UsageReport, ...ErrorResponses },
        detail: {
          summary: "Usage report",
          description:
            "Requests, errors, cost units, bytes and latency percentiles per route, key, status or UTC " +
            "time bucket over [from, to). Read from per-minute and per-hour rollups plus the raw rows of " +
            "the partial minutes at either end, so the answer is exact and its cost grows with the " +
            "length of the range, not the number of requests.",
          tags,
        },
      },
    )
    .get(
      "/usage/export",
      ({ query, request, set, status }) => {
        set.headers["cache-control"] = "no-store";
        const stray = strayParameter(request, ExportQueryParams);
        const r = stray ? { error: stray } : range(usage, query);
        if ("error" in r) return fail(set, status(400, problem(400, r.error)));
        const format = query.format ?? "csv";
        const granularity = query.granularity ?? "raw";
        let body: ReadableStream<Uint8Array>;
        try {
          body = usage.exportUsage({ format, granularity, tenant: query.tenant, from: r.from, to: r.to });
        } catch (err) {
          if (err instanceof UsageQueryError) return fail(set, status(400, problem(400, err.message)));
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
        response: { 200: ExportBody, ...ErrorResponses },
        detail: {
          summary: "Export usage",
          description:
            "Streams raw usage rows, or totals per tenant and UTC hour, day or month, as CSV or NDJSON, " +
            "for billing pipelines. Memory stays flat whatever the size. Rows are ordered by time; export " +
            "closed periods, since rows reach the database up to usage.flushInterval after a request ends.",
          tags,
        },
      },
    );
}

/** Problems go out as application/problem+json whatever content type the host would pick. */
function fail<T>(set: { headers: Record<string, unknown> }, response: T): T {
  set.headers["content-type"] = problemHeaders["content-type"];
  return response;
}

/** Echoes a client-chosen name printable, unquoted and short. */
function clip(s: string): string {
  const short = s.length > 64 ? `${s.slice(0, 64)}…` : s;
  return Array.from(short, (c) => (c < " " || c === "\u007f" || c === '"' ? "?" : c)).join("");
}
