/** Liveness, readiness and metrics: what a supervisor or a scraper asks. */
import { Elysia } from "elysia";
import type { Registry } from "prom-client";
import type { OpenDb } from "../../db/open.ts";
import { describeStoreStatus, type StoreStatus } from "../../db/store-health.ts";
import { AdminProblem, responses } from "../problem.ts";
import { Health, MetricsText, Ready } from "./model.ts";

const tags = ["operations"];

export interface OperationsDeps {
  database: OpenDb;
  registry: Registry;
  /** True once shutdown has begun: readiness fails so load balancers stop sending traffic. */
  draining: () => boolean;
  /** Whether the writes traffic causes reach the database. */
  store: () => StoreStatus;
}

export const operationsPlugin = (deps: OperationsDeps) =>
  new Elysia({ normalize: false })
    .get("/healthz", () => ({ status: "ok" as const }), {
      response: { 200: Health },
      detail: {
        summary: "Liveness",
        description: "Answers while the process runs. The only route that needs no token.",
        tags,
        security: [],
      },
    })
    .get(
      "/readyz",
      () => {
        if (deps.draining()) throw unavailable("The gateway is shutting down.");
        try {
          deps.database.sqlite.query("SELECT 1").get();
        } catch {
          throw unavailable("The database is unreachable.");
        }
        const store = deps.store();
        if (!store.healthy) throw unavailable(describeStoreStatus(store));
        return { status: "ready" as const };
      },
      {
        response: responses({ 200: Ready }, [503]),
        detail: {
          summary: "Readiness",
          description:
            "503 while draining, when the database cannot be read, or while it refuses writes (locked, " +
            "full, read-only, file removed); the detail names the fault and the usage rows buffered.",
          tags,
        },
      },
    )
    .get(
      "/metrics",
      async ({ set }) => {
        set.headers["content-type"] = deps.registry.contentType;
        return await deps.registry.metrics();
      },
      {
        response: responses({ 200: MetricsText }),
        detail: {
          summary: "Prometheus metrics",
          description:
            "Per-tenant request, refusal and latency series. Labels are bounded: tenant id (capped, then " +
            '"_other"), outcome class, status class and refusal code.',
          tags,
        },
      },
    );

const unavailable = (detail: string) =>
  new AdminProblem(503, "service_unavailable", detail, {}, { "retry-after": "5" });
