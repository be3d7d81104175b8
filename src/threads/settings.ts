/** What server.threads cannot be combined with, as located config errors (`gatehouse validate`). */
import type { ReferenceIssue } from "../config/check-references.ts";
import type { GatewayConfig } from "../config/schema.ts";

export function checkThreadSettings(c: GatewayConfig): ReferenceIssue[] {
  if ((c.server?.threads ?? 1) === 1 || c.cluster?.redis === undefined) return [];
  return [
    {
      path: ["server", "threads"],
      message:
        "more than one data-plane thread cannot be combined with cluster.redis: the threads share their " +
        "counters in memory, a cluster shares them in Redis",
      hint: "set server.threads to 1; with Redis, run one gatehouse process per core instead (they share the limits)",
    },
  ];
}
