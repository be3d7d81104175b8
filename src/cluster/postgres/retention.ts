/** Usage retention in PostgreSQL (cluster mode): the same sweep as SQLite's, with its own statements. */
import type { RetentionDeletes } from "../../usage/retention.ts";
import type { Pg } from "./connect.ts";

export function pgRetentionDeletes({ sql }: Pg): RetentionDeletes {
  return {
    rows: async (cutoff, limit) =>
      (
        await sql.unsafe("DELETE FROM usage WHERE id IN (SELECT id FROM usage WHERE ts < $1 LIMIT $2)", [
          cutoff,
          limit,
        ])
      ).count,
    rollups: async (grain, dim, startAtMost, limit) =>
      (
        await sql.unsafe(
          "DELETE FROM usage_rollup WHERE ctid IN (SELECT ctid FROM usage_rollup " +
            "WHERE grain = $1 AND dim = $2 AND start <= $3 LIMIT $4)",
          [grain, dim, startAtMost, limit],
        )
      ).count,
  };
}
