// gatehouse with one of its performance changes undone, for A/B rounds against gatehouse as it is
// (bench/run.ts). CONFIG names the gateway.yaml; VARIANT says what is undone:
//   fetch    upstream requests through Bun's fetch instead of gatehouse's HTTP/1.1 client
//   timers   a timer per upstream deadline (set and cleared per request) instead of deadline lists
// (The usage batch size is a setting: its variant is a gateway.yaml of its own.)
import { startGatewayUnlocked } from "../../src/app.ts";
import type { DeadlineSource } from "../../src/lib/deadlines.ts";

const variant = process.env.VARIANT ?? "";
if (!["fetch", "timers", ""].includes(variant)) throw new Error(`unknown VARIANT ${variant}`);

/** What gatehouse did before the deadline lists: one real timer per deadline, reset per chunk. */
const timerPerDeadline: DeadlineSource = {
  after(ms, task) {
    let timer = setTimeout(task, ms);
    timer.unref();
    return {
      cancel: () => clearTimeout(timer),
      renew() {
        clearTimeout(timer);
        timer = setTimeout(task, ms);
        timer.unref();
      },
    };
  },
};

const gateway = await startGatewayUnlocked({
  configPath: process.env.CONFIG ?? "gateway.yaml",
  ...(variant === "fetch" ? { fetch } : {}),
  ...(variant === "timers" ? { deadlines: timerPerDeadline } : {}),
});
process.once("SIGTERM", () => void gateway.stop().then(() => process.exit(0)));
