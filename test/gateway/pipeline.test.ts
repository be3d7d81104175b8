import { expect, test } from "bun:test";
import { createGateway } from "../../src/gateway/pipeline.ts";
import type { Snapshot } from "../../src/gateway/snapshot.ts";
import { compileIdentity } from "../../src/identity/compile.ts";
import { ManualClock } from "../../src/lib/clock.ts";
import type { Policy } from "../../src/policies/policy.ts";
import { fetchProxy } from "../support/proxy.ts";

test("a bug in a policy is a 500 problem that reveals nothing, logged with its request id", async () => {
  const logged: Record<string, unknown>[] = [];
  const broken: Policy = {
    name: "broken",
    check() {
      throw new Error("internal detail at /srv/secret/path");
    },
  };
  const observed: string[] = [];
  const handle = createGateway({
    clock: new ManualClock(),
    snapshot: () => ({ identity: compileIdentity({}) }) as Snapshot,
    policies: [broken],
    proxy: { ...fetchProxy(), maxBodyBytes: 1024, now: () => 0 },
    observe: (_ctx, outcome) => observed.push(outcome.outcome),
    log: (_msg, fields) => logged.push(fields),
  });
  const res = await handle(new Request("http://localhost/v1/items"), null);
  expect(res.status).toBe(500);
  expect(res.headers.get("content-type")).toBe("application/problem+json");
  const body = await res.text();
  expect(body).not.toContain("secret");
  expect(body).not.toContain("internal detail");
  expect(body).not.toContain("/srv");
  expect(JSON.parse(body).type).toBe("urn:gatehouse:problem:internal-error");
  expect(logged[0]?.requestId).toBe(res.headers.get("x-request-id")!);
  expect(String(logged[0]?.error)).toContain("internal detail");
  expect(observed).toEqual(["rejected:internal_error"]);
});
