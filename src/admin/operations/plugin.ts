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
  /** Cluster mode: what is off (PostgreSQL or Redis away, nodes on different configs), or null. */
  cluster?: () => string | null;
}

export const operationsPlugin = (deps: OperationsDeps) =>
  new Elysia({ normalize: false })
    .get("/healthz", () => ({ status: "ok" as const }), {
      response: { 200: Health },
      detail: {
        summary: "Liveness",
        operationId: "getHealth",
        description: "Answers while the process runs. The only route that needs no token.",
        tags,
        security: [],
      },
    })
    .get(
      "/readyz",
      () => {
        if (deps.draining()) throw unavailable("The gateway is shutting down.");
        // A sick store degrades the gateway but does not stop it: the data plane serves from memory
        // and buffers its writes, so a load balancer must keep sending traffic. The answer says why.
        try {
          deps.database.sqlite.query("SELECT 1").get();
        } catch {
          return {
            status: "degraded" as const,
            detail: "The database cannot be read; traffic is served from the configuration in memory.",
          };
        }
        const store = deps.store();
        if (!store.healthy) return { status: "degraded" as const, detail: describeStoreStatus(store) };
        // Limits are then decided by cluster.onStoreError, objects served from this node's copy.
        const cluster = deps.cluster?.();
        if (cluster) return { status: "degraded" as const, detail: cluster };
        return { status: "ready" as const };
      },
      {
        response: responses({ 200: Ready }, [503]),
        detail: {
          summary: "Readiness",
          operationId: "getReadiness",
          description:
            "503 while draining. While the database cannot be read or refuses writes (locked, full, " +
            "read-only, file removed) the answer is 200 with status degraded and a detail naming the " +
            "fault and the usage rows buffered: traffic is still served, so load balancers keep sending it. " +
            "In cluster mode also while PostgreSQL or Redis cannot be reached (saying what the node does " +
            "meanwhile), and while the nodes run different config files.",
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
          operationId: "getMetrics",
          description:
            "Request, refusal and latency series by tenant, route and upstream; upstream failures by cause; " +
            "the store, usage writer, key cache, reloads and access log; process and runtime metrics. Labels " +
            'are bounded: tenant id, route and upstream (capped, then "_other"), outcome class, status class, ' +
            "refusal code (the problem type's name) and failure cause.",
          tags,
        },
      },
    );

const unavailable = (detail: string) =>
  new AdminProblem(503, "service_unavailable", detail, {}, { "retry-after": "5" });
