/**
 * Built-in upstreams (`mock:` in gateway.yaml), answered in-process: a developer sees exactly what
 * gatehouse forwards (echo), and tests get every upstream behaviour the gateway must map (a fixed
 * status, a slow answer, no answer, a body that stops half-way, a dropped connection) without a
 * network. Their delays run on the gateway's scheduler, so in test mode they follow its clock.
 */
import type { MockUpstreamDecl } from "../config/schema.ts";
import { parseDuration } from "../config/units.ts";
import type { Scheduler } from "../lib/scheduler.ts";

export type MockBehaviour =
  | { kind: "echo" | "hang" | "stall" | "close"; delayMs: 0 }
  | {
      kind: "answer";
      /** Null: echo the request, after the delay. */
      fixed: { status: number; body: string; headers: readonly (readonly [string, string])[] } | null;
      delayMs: number;
    };

/**
 * Counts mock upstreams waiting on the clock (a delay, a hang, a stalled body). Test mode's scenario
 * runner moves time forward only when every request it has in flight is waiting so: nothing else
 * could answer it, so skipping ahead cannot change the outcome.
 */
export interface WaitTracker {
  /** Marks the start of a wait; call the returned function once when it ends. */
  begin(): () => void;
}

export interface MockRequest {
  upstream: string;
  method: string;
  pathAndQuery: string;
  headers: Headers;
  body: ReadableStream<Uint8Array> | null;
  signal: AbortSignal;
  scheduler: Scheduler;
  waits?: WaitTracker | undefined;
}

/** Calls `end` once, however many times the returned function runs. */
function once(end: () => void): () => void {
  let done = false;
  return () => {
    if (!done) {
      done = true;
      end();
    }
  };
}

/** What a dropped connection looks like to the proxy: the same kind of error fetch throws. */
export class MockConnectionClosed extends TypeError {
  readonly code = "ECONNRESET";
  constructor() {
    super("The upstream closed the connection without an answer.");
  }
}

/** Resolves after `ms` on the scheduler, or rejects when the request is aborted first. */
function wait(ms: number, req: MockRequest): Promise<void> {
  const { signal } = req;
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const end = once(req.waits?.begin() ?? (() => {}));
    const onAbort = () => {
      cancel();
      end();
      reject(signal.reason);
    };
    const cancel = req.scheduler.after(ms, () => {
      signal.removeEventListener("abort", onAbort);
      end();
      resolve();
    });
    signal.addEventListener("abort", onAbort);
  });
}

/** Never resolves; rejects when the request ends (its deadline, or the client leaving). */
function waitForever(req: MockRequest): Promise<never> {
  const { signal } = req;
  return new Promise((_, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const end = once(req.waits?.begin() ?? (() => {}));
    signal.addEventListener("abort", () => {
      end();
      reject(signal.reason);
    });
  });
}

export async function answerMock(mock: MockBehaviour, req: MockRequest): Promise<Response> {
  switch (mock.kind) {
    case "echo":
      return echo(req);
    case "close":
      await req.body?.cancel();
      throw new MockConnectionClosed();
    case "hang":
      return waitForever(req);
    case "stall":
      return stalled(req);
    case "answer":
      if (mock.delayMs > 0) await wait(mock.delayMs, req);
      if (mock.fixed === null) return echo(req);
      await req.body?.cancel();
      return new Response(mock.fixed.body, {
        status: mock.fixed.status,
        headers: mock.fixed.headers as [string, string][],
      });
  }
}

async function echo(req: MockRequest): Promise<Response> {
  const q = req.pathAndQuery.indexOf("?");
  const text = req.body ? await new Response(req.body).text() : "";
  const payload = {
    upstream: req.upstream,
    method: req.method,
    path: q < 0 ? req.pathAndQuery : req.pathAndQuery.slice(0, q),
    query: q < 0 ? "" : req.pathAndQuery.slice(q + 1),
    headers: Object.fromEntries(req.headers),
    body: text,
  };
  return new Response(JSON.stringify(payload, null, 2), { headers: { "content-type": "application/json" } });
}

/** Headers and the first part of a JSON body at once, then nothing until the request is aborted. */
async function stalled(req: MockRequest): Promise<Response> {
  await req.body?.cancel();
  const rest = waitForever(req);
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode('{"items": ['));
      rest.catch((reason) => controller.error(reason));
    },
  });
  return new Response(body, { headers: { "content-type": "application/json" } });
}

/** The compiled form of a `mock:` declaration. */
export function compileMock(decl: MockUpstreamDecl["mock"]): MockBehaviour {
  if (typeof decl === "string") return { kind: decl, delayMs: 0 };
  const fixed =
    decl.status === undefined && decl.body === undefined
      ? null
      : {
          status: decl.status ?? 200,
          body: decl.body ?? "",
          headers: Object.entries(decl.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v] as const),
        };
  return { kind: "answer", fixed, delayMs: decl.delay ? parseDuration(decl.delay) : 0 };
}
