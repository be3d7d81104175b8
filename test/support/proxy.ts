/** ProxyDeps for gateways built in a test: upstream requests through fetch, deadlines on real timers. */
import { FetchClient } from "../../src/gateway/response-call.ts";
import { Deadlines } from "../../src/lib/deadlines.ts";
import { timerScheduler } from "../../src/lib/scheduler.ts";

export function fetchProxy() {
  const deadlines = new Deadlines({ scheduler: timerScheduler, now: () => performance.now() });
  return { client: new FetchClient(fetch, deadlines), deadlines, scheduler: timerScheduler };
}
