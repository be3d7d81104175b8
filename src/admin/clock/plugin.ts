/**
 * GET /clock and POST /clock: only mounted in test mode, where the clock is frozen and moves only
 * when told to. Moving it runs everything that falls due before the answer is sent.
 */
import { Elysia } from "elysia";
import { parseDuration } from "../../config/units.ts";
import { ClockMovedBackwards, type VirtualTime } from "../../testmode/virtual-time.ts";
import { iso } from "../fields.ts";
import { conflict, responses } from "../problem.ts";
import { ClockView, MoveClockBody } from "./model.ts";

const tags = ["test mode"];

export const clockPlugin = (clock: VirtualTime) =>
  new Elysia({ normalize: false })
    .get("/clock", () => ({ now: iso(clock.now()) }), {
      response: responses({ 200: ClockView }),
      detail: { summary: "Read the test clock", operationId: "getClock", tags },
    })
    .post(
      "/clock",
      async ({ body }) => {
        try {
          if ("advance" in body) await clock.advance(parseDuration(body.advance));
          else await clock.set(Date.parse(body.set));
        } catch (err) {
          if (err instanceof ClockMovedBackwards) throw conflict(`${err.message}.`);
          throw err;
        }
        return { now: iso(clock.now()) };
      },
      {
        parse: "json",
        body: MoveClockBody,
        response: responses({ 200: ClockView }, [400, 409, 413]),
        detail: {
          summary: "Move the test clock forward",
          description:
            'Body `{"advance": "31d"}` or `{"set": "2027-01-01T00:00:00Z"}`. Everything that falls due ' +
            "on the way runs, in time order, before the answer. The clock never moves backwards (409).",
          operationId: "moveClock",
          tags,
        },
      },
    );
