/**
 * The spec's request examples work: every operation is sent to a real gateway serving the shipped
 * gateway.yaml, built from nothing but the spec (its path and query parameter examples and its body
 * example), and must get its documented success status. Creations run first and deletions last, so
 * the examples can name the tenant and key they create.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { startTestGateway, type TestGateway } from "../support/gateway.ts";

// biome-ignore lint/suspicious/noExplicitAny: the spec is arbitrary JSON
type Json = any;

let gw: TestGateway;
let spec: Json;
beforeAll(async () => {
  const shipped = readFileSync(join(import.meta.dir, "../../gateway.yaml"), "utf8");
  // A master key, so that storing the example credential succeeds.
  const masterKey = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64");
  // With a portal listener, so that minting a sign-in link succeeds.
  gw = startTestGateway(shipped.replace("server:\n", "server:\n  portal: 127.0.0.1:0\n"), {
    testClockStart: Date.parse("2026-01-15T12:00:00Z"),
    env: { GATEHOUSE_MASTER_KEY: masterKey },
  });
  spec = await (await fetch(`${gw.adminUrl}/openapi.json`)).json();
});
afterAll(() => gw.close());

interface Operation {
  method: string;
  path: string;
  op: Json;
}

const phase = ({ op }: Operation) =>
  /^(create|put)/.test(op.operationId)
    ? 0
    : /^revoke/.test(op.operationId)
      ? 2
      : /^delete/.test(op.operationId)
        ? 3
        : 1;

function request({ method, path, op }: Operation): Request {
  const params: Json[] = op.parameters ?? [];
  let target = path;
  const query = new URLSearchParams();
  for (const p of params) {
    if (p.in === "path") {
      expect(p.example, `${method} ${path}: path parameter ${p.name} has no example`).toBeDefined();
      target = target.replace(`{${p.name}}`, encodeURIComponent(String(p.example)));
    } else if (p.in === "query" && p.example !== undefined) query.set(p.name, String(p.example));
  }
  const media = op.requestBody?.content?.["application/json"];
  if (op.requestBody?.required)
    expect(media?.example, `${method} ${path}: body has no example`).toBeDefined();
  const body = media?.example === undefined ? undefined : JSON.stringify(media.example);
  const url = `${gw.adminUrl}${target}${query.size ? `?${query}` : ""}`;
  return new Request(url, {
    method: method.toUpperCase(),
    ...(body === undefined ? {} : { body, headers: { "content-type": "application/json" } }),
  });
}

test("every request example succeeds with its documented status", async () => {
  const operations: Operation[] = Object.entries<Record<string, Json>>(spec.paths).flatMap(([path, item]) =>
    Object.entries<Json>(item).map(([method, op]) => ({ method, path, op })),
  );
  operations.sort((a, b) => phase(a) - phase(b));
  expect(operations.length).toBeGreaterThanOrEqual(33);
  for (const operation of operations) {
    // The documented 2xx statuses: PUT /credentials/{name} answers 201 when it creates, 200 when it replaces.
    const success = Object.keys(operation.op.responses)
      .map(Number)
      .filter((s) => s >= 200 && s < 300);
    const res = await fetch(request(operation));
    const text = await res.text();
    const ok = success.includes(res.status);
    expect(`${operation.op.operationId} ${ok ? "succeeded" : `${res.status} ${text}`}`).toBe(
      `${operation.op.operationId} succeeded`,
    );
  }
});
