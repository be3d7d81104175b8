/**
 * Which client carries upstream requests: the HTTP/1.1 client, unless an HTTP proxy is named in the
 * environment, which only Bun's fetch honours. Told apart by what each adds to a request that has no
 * User-Agent: fetch adds its own, the HTTP/1.1 client nothing.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { startTestGateway } from "../support/gateway.ts";
import { get, rawRequest } from "../support/raw-http.ts";
import { type RecordingUpstream, startUpstream } from "../support/upstream.ts";

let up: RecordingUpstream;
beforeAll(() => {
  up = startUpstream();
});
afterAll(() => up.stop());

/** The headers the upstream received for a request without User-Agent, through a gateway with `env`. */
async function received(env: Record<string, string> = {}) {
  const gw = startTestGateway(
    `version: 1
upstreams: { up: { url: "${up.url}" } }
plans: { all: { rules: [{ allow: "* /**" }] } }
routes: [{ match: "* /**", upstream: up }]
tenants: { acme: { plan: all, keys: [{ id: acme-key, secret: acme-secret-0001 }] } }
`,
    { env },
  );
  try {
    const res = await rawRequest(
      Number(new URL(gw.dataUrl).port),
      get("/x", ["X-Api-Key: acme-secret-0001"]),
    );
    expect(res.status).toBe(200);
    return up.received.at(-1)!.headers;
  } finally {
    await gw.close();
  }
}

test("the HTTP/1.1 client sends only what the client and the gateway put there", async () => {
  const h = await received();
  expect(h["user-agent"]).toBeUndefined();
  expect(h["accept-encoding"]).toBeUndefined();
});

test("Bun's fetch carries the requests when the environment names an HTTP proxy", async () => {
  // fetch reads the proxy from the process's own environment, where there is none: it goes direct.
  const h = await received({ HTTPS_PROXY: "http://proxy.invalid:3128" });
  expect(h["user-agent"]).toStartWith("Bun/");
});
