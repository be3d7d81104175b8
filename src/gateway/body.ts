/** Streams that count, limit and watch bodies as they pass through, without buffering them. */
import type { Deadline, DeadlineSource } from "../lib/deadlines.ts";

export class BodyTooLarge extends Error {
  constructor() {
    super("request body too large");
  }
}

/** Passes the request body through, failing it once more than `max` bytes have arrived. */
export function limitBody(body: ReadableStream<Uint8Array>, max: number, onBytes: (n: number) => void) {
  let total = 0;
  return body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        total += chunk.byteLength;
        onBytes(total);
        if (total > max) controller.error(new BodyTooLarge());
        else controller.enqueue(chunk);
      },
    }),
  );
}

export type BodyEnd = "complete" | "idle_timeout" | "upstream_error" | "client_aborted";

/**
 * Relays the upstream's response body, counting bytes, ending it when the upstream goes quiet for
 * longer than `idleMs`, and reporting exactly once how it ended. `tap` sees each chunk as it passes
 * (a route measuring its cost from the body), before `onEnd`.
 */
export function relayBody(
  body: ReadableStream<Uint8Array>,
  idleMs: number,
  deadlines: DeadlineSource,
  /** `err` is what the upstream's body threw, for "upstream_error". */
  onEnd: (how: BodyEnd, bytes: number, err?: unknown) => void,
  abortUpstream: () => void,
  tap?: (chunk: Uint8Array) => void,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let bytes = 0;
  let ended = false;
  let idle: Deadline | undefined;
  const end = (how: BodyEnd, err?: unknown) => {
    if (ended) return;
    ended = true;
    idle?.cancel();
    onEnd(how, bytes, err);
  };
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (idle) idle.renew();
      else {
        idle = deadlines.after(idleMs, () => {
          end("idle_timeout");
          abortUpstream();
          reader.cancel().catch(() => {});
          controller.error(new Error("upstream idle timeout"));
        });
      }
      try {
        const { done, value } = await reader.read();
        idle.cancel();
        if (ended) return;
        if (done) {
          controller.close();
          end("complete");
          return;
        }
        bytes += value.byteLength;
        tap?.(value);
        controller.enqueue(value);
      } catch (err) {
        idle.cancel();
        if (ended) return;
        end("upstream_error", err);
        controller.error(err);
      }
    },
    cancel(reason) {
      end("client_aborted");
      abortUpstream();
      return reader.cancel(reason);
    },
  });
}
