import { Elysia } from "elysia";
import { DEFAULT_PAGE, decodeCursor } from "../pagination.ts";
import { responses } from "../problem.ts";
import { AuditPage, AuditQuery } from "./model.ts";
import type { AuditService } from "./service.ts";

export const auditPlugin = (audit: AuditService) =>
  new Elysia({ normalize: false }).get(
    "/audit",
    ({ query }) =>
      audit.list(query.limit ?? DEFAULT_PAGE, decodeCursor(query.cursor), {
        objectType: query.objectType,
        objectId: query.objectId,
      }),
    {
      query: AuditQuery,
      response: responses({ 200: AuditPage }, [400]),
      detail: {
        summary: "List the audit log",
        operationId: "listAudit",
        description: "Every change made through the control API and every config sync, newest first.",
        tags: ["audit"],
      },
    },
  );
