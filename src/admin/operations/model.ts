import { Type as T } from "@sinclair/typebox";

export const Health = T.Object({ status: T.Literal("ok") }, { additionalProperties: false });
export const Ready = T.Union([
  T.Object({ status: T.Literal("ready") }, { additionalProperties: false }),
  T.Object(
    {
      status: T.Literal("degraded"),
      detail: T.String({ description: "What is wrong, and what waits in memory meanwhile." }),
    },
    { additionalProperties: false },
  ),
]);
export const MetricsText = T.String({ description: "Prometheus text exposition format 0.0.4." });
