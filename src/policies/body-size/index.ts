/**
 * Refuses a declared body larger than the limit before anything is forwarded. Bodies without a
 * Content-Length are counted as they stream (gateway/body.ts).
 */
import { Refusal } from "../../gateway/refusal.ts";
import type { Policy, RequestContext } from "../policy.ts";

export function createBodySizePolicy(maxBytes: number): Policy {
  return {
    name: "body-size",
    check(ctx: RequestContext) {
      const declared = ctx.headers.get("content-length");
      if (declared === null) return undefined;
      const n = Number(declared);
      if (!Number.isSafeInteger(n) || n < 0)
        return new Refusal("bad_request", "Content-Length is not a valid length.");
      if (n > maxBytes)
        return new Refusal("payload_too_large", `The request body is larger than ${maxBytes} bytes.`);
      return undefined;
    },
  };
}
