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

export interface MockRequest {
  upstream: string;
  method: string;
  pathAndQuery: string;
  headers: Headers;
  body: ReadableStream<Uint8Array> | null;
  signal: AbortSignal;
  scheduler: Scheduler;
}

/** What a dropped connection looks like to the proxy: the same kind of error fetch throws. */
export class MockConnectionClosed extends TypeError {
  constructor() {
    super("The upstream closed the connection without an answer.");
  }
}

/** Resolves after `ms` on the scheduler, or rejects when the request is aborted first. */
function wait(ms: number, signal: AbortSignal, scheduler: Scheduler): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      cancel();
      reject(signal.reason);
    };
    const cancel = scheduler.after(ms, () => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    });
    signal.addEventListener("abort", onAbort);
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
      // Only the request's end (its deadline, or the client leaving) ends the wait.
      return new Promise((_, reject) => {
        if (req.signal.aborted) reject(req.signal.reason);
        req.signal.addEventListener("abort", () => reject(req.signal.reason));
      });
    case "stall":
      return stalled(req);
    case "answer":
      if (mock.delayMs > 0) await wait(mock.delayMs, req.signal, req.scheduler);
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
  const { signal } = req;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode('{"items": ['));
      signal.addEventListener("abort", () => controller.error(signal.reason));
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
