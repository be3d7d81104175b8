import { Type as T } from "@sinclair/typebox";
import { duration } from "../../config/schema.ts";
import { Timestamp } from "../fields.ts";

export const ClockView = T.Object(
  { now: Timestamp("The test clock's current time.") },
  { additionalProperties: false, description: "Test mode's clock." },
);

export const MoveClockBody = T.Union(
  [
    T.Object(
      { advance: duration("How far to move the clock forward, e.g. 1s, 90m, 31d.") },
      { additionalProperties: false },
    ),
    T.Object(
      { set: Timestamp("The time to move the clock to; never earlier than now.") },
      { additionalProperties: false },
    ),
  ],
  {
    description:
      "Moves the clock forward. Everything that falls due on the way runs, in time order, before the " +
      "answer: window buckets leaving, quota periods rolling over, key expiry and grace ends, usage " +
      "flushes and retention.",
    examples: [{ advance: "1h" }],
  },
);
