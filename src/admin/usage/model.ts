/** Query and response schemas of the usage routes; the OpenAPI document derives from these. */
import { t } from "elysia";
import { INSTANT_PATTERN } from "../../lib/instant.ts";
import { GRANULARITIES } from "../../usage/export.ts";
import { EXPORT_FORMATS } from "../../usage/format.ts";
import { GROUP_BYS } from "../../usage/query.ts";

const strict = { additionalProperties: false } as const;

const Instant = (description: string, example: string) =>
  t.String({
    pattern: INSTANT_PATTERN,
    description: `${description} RFC 3339 date-time with an offset, or epoch milliseconds.`,
    examples: [example],
  });

const range = {
  tenant: t.Optional(
    t.String({
      pattern: "^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
      description: "Only this tenant's requests (default: all, including unauthenticated ones).",
      examples: ["acme"],
    }),
  ),
  from: t.Optional(Instant("Start, inclusive (default: 24 hours before `to`).", "2026-01-01T00:00:00Z")),
  to: t.Optional(
    Instant(
      "End, exclusive (default: just after now, so every request answered so far counts).",
      "2026-02-01T00:00:00Z",
    ),
  ),
};

export const UsageQueryParams = t.Object(
  {
    ...range,
    groupBy: t.Optional(
      t.UnionEnum([...GROUP_BYS], {
        default: "hour",
        examples: ["route"],
        description:
          "route, key or status, or UTC time buckets: minute, hour, day or month (default hour). Time buckets " +
          "without requests are left out; a report holds at most 10080 of them.",
      }),
    ),
  },
  strict,
);

export const ExportQueryParams = t.Object(
  {
    ...range,
    format: t.Optional(
      t.UnionEnum([...EXPORT_FORMATS], {
        default: "csv",
        examples: ["csv"],
        description: "csv (RFC 4180) or ndjson (default csv).",
      }),
    ),
    granularity: t.Optional(
      t.UnionEnum([...GRANULARITIES], {
        default: "raw",
        examples: ["day"],
        description:
          "raw: one record per request. hour, day, month: totals per UTC period and tenant, with the " +
          "first and last periods clipped to [from, to) (default raw).",
      }),
    ),
  },
  strict,
);

const Count = (description: string) => t.Integer({ minimum: 0, description });

export const LatencySummary = t.Object(
  {
    p50: t.Number(),
    p90: t.Number(),
    p99: t.Number(),
    max: t.Number({ description: "Exact." }),
  },
  {
    ...strict,
    description:
      "Total latency in ms. Percentiles are nearest-rank, read from a log histogram with 4 buckets per " +
      "doubling: each is within 9.05% of the exact value.",
  },
);

export const UsageGroup = t.Object(
  {
    group: t.Union([t.String(), t.Null()], {
      description:
        'The route\'s match text, the key id, the status ("404"), or the ISO start of the time bucket; ' +
        "null for requests without a route or key.",
    }),
    requests: Count("Requests, refused ones included."),
    errors: Count(
      "Requests with status >= 400 or an outcome other than ok (refused, upstream error, aborted).",
    ),
    costUnits: Count("Cost units counted against limits and quotas; refused requests count 0."),
    bytesIn: Count("Request body bytes."),
    bytesOut: Count("Response body bytes sent."),
    latencyMs: t.Union([LatencySummary, t.Null()]),
    upstreamMsMean: t.Union([t.Number(), t.Null()], {
      description: "Mean time to the upstream's response headers, over requests that reached it.",
    }),
  },
  strict,
);

export const UsageReport = t.Object(
  {
    tenant: t.Union([t.String(), t.Null()]),
    from: t.String({ format: "date-time" }),
    to: t.String({ format: "date-time" }),
    groupBy: t.UnionEnum([...GROUP_BYS]),
    groups: t.Array(UsageGroup, {
      description: "Time buckets in time order; statuses ascending; routes and keys busiest first.",
    }),
    total: UsageGroup,
  },
  { ...strict, description: "Usage per group. Rows reach the report within usage.flushInterval." },
);

export const ExportBody = t.String({
  description:
    "Streamed. csv: text/csv, CRLF line ends, a header row, fields quoted per RFC 4180. " +
    "ndjson: application/x-ndjson, one JSON object per line with the same names as the CSV header.",
});
