import { Elysia } from "elysia";
import { exportApiObjects } from "../../cli/export.ts";
import type { OpenDb } from "../../db/open.ts";
import type { Clock } from "../../lib/clock.ts";
import { actorOf } from "../client-ip.ts";
import { responses } from "../problem.ts";
import { ConfigInfo, ExportYaml, ReloadResult } from "./model.ts";
import type { ConfigService } from "./service.ts";

const tags = ["config"];

export const configPlugin = (config: ConfigService, database: OpenDb, clock: Clock) =>
  new Elysia({ normalize: false })
    .get("/config", () => config.info(), {
      response: responses({ 200: ConfigInfo }),
      detail: {
        summary: "The configuration in force",
        operationId: "getConfig",
        description: "Version, file, hash, when it was loaded, and why the last reload failed, if it did.",
        tags,
      },
    })
    .post("/config/reload", ({ request }) => config.reload(actorOf(request)), {
      response: responses({ 200: ReloadResult }, [422]),
      detail: {
        summary: "Reload the config file",
        operationId: "reloadConfig",
        description:
          "Re-reads, validates and syncs the file. On errors (422, each located as file:line:col) the " +
          "running config keeps serving. Tenants and keys created through the API are kept either way.",
        tags,
      },
    })
    .get(
      "/export",
      ({ set }) => {
        set.headers["content-type"] = "application/yaml; charset=utf-8";
        return exportApiObjects(database.db, new Date(clock.now()));
      },
      {
        response: responses({ 200: ExportYaml }),
        detail: {
          summary: "Export API-made tenants and keys as YAML",
          operationId: "exportConfig",
          description: "The same output as `gatehouse export`: paste it into gateway.yaml.",
          tags,
        },
      },
    );
