import { Type as T } from "@sinclair/typebox";

export const Health = T.Object({ status: T.Literal("ok") }, { additionalProperties: false });
export const Ready = T.Object({ status: T.Literal("ready") }, { additionalProperties: false });
export const MetricsText = T.String({ description: "Prometheus text exposition format 0.0.4." });
