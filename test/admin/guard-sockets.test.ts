/**
 * The control API's guard against a real running gateway, over sockets: what a web page (DNS
 * rebinding, cross-site requests) or a local guesser can send, byte for byte.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ManualClock } from "../../src/lib/clock.ts";
import { basicConfig, startTestGateway, type TestGateway } from "../support/gateway.ts";
import { rawRequest } from "../support/raw-http.ts";

const TOKEN = "k7Qm2xVb9LpR4tZw8NcY3hJd";
const UNUSED_UPSTREAM = "http://127.0.0.1:9";

/** One request as raw text; a body gets its Content-Length. */
function raw(method: string, target: string, headers: string[], body?: string): string {
  const length = body === undefined ? [] : [`Content-Length: ${Buffer.byteLength(body)}`];
  return [`${method} ${target} HTTP/1.1`, ...headers, ...length, "Connection: close", "", body ?? ""].join(
    "\r\n",
  );
}

const portOf = (url: string) => Number(new URL(url).port);

describe("a tokenless listener (the shipped gateway.yaml has no token)", () => {
  let gw: TestGateway;
  let port: number;
  beforeAll(() => {
    gw = startTestGateway(basicConfig(UNUSED_UPSTREAM));
    port = portOf(gw.adminUrl);
  });
  afterAll(() => gw.close());

  const tenantIds = async () => {
    const res = await fetch(`${gw.adminUrl}/tenants`);
    expect(res.status).toBe(200);
    return ((await res.json()) as { items: { id: string }[] }).items.map((t) => t.id);
  };

  test("the DNS-rebinding reproduction is refused and creates nothing", async () => {
    const body = '{"id":"pwned","plan":"basic"}';
    const attacks = [
      raw("POST", "/tenants", ["Host: attacker.example", "Content-Type: text/plain"], body),
      raw("POST", "/tenants", [`Host: attacker.example:${port}`, "Content-Type: application/json"], body),
      raw(
        "POST",
        "/tenants/acme/keys",
        [`Host: rebind.attacker.example:${port}`, "Content-Type: application/json"],
        "{}",
      ),
    ];
    for (const attack of attacks) {
      const res = await rawRequest(port, attack);
      expect(res.status).toBe(421);
      expect(res.head.toLowerCase()).toContain("content-type: application/problem+json");
      expect(res.body).not.toContain("secret");
    }
    for (const path of ["/tenants", "/usage/export", "/export", "/tenants/acme/keys"]) {
      expect((await rawRequest(port, raw("GET", path, ["Host: attacker.example"]))).status).toBe(421);
    }
    expect(await tenantIds()).toEqual(["acme", "globex"]);
  });

  test("requests addressed to localhost, 127.0.0.1 or [::1] are served", async () => {
    for (const host of [
      `localhost:${port}`,
      `127.0.0.1:${port}`,
      `[::1]:${port}`,
      "LOCALHOST",
      "127.0.0.1",
    ]) {
      const res = await rawRequest(port, raw("GET", "/tenants", [`Host: ${host}`]));
      expect(res.status, host).toBe(200);
    }
    const made = await rawRequest(
      port,
      raw(
        "POST",
        "/tenants",
        [`Host: localhost:${port}`, "Content-Type: application/json"],
        '{"id":"local-co","plan":"basic"}',
      ),
    );
    expect(made.status).toBe(201);
    expect(await tenantIds()).toContain("local-co");
  });

  test("missing, repeated, non-ASCII and malformed Host headers are refused", async () => {
    const cases = [
      "GET /tenants HTTP/1.0\r\n\r\n",
      "GET /tenants HTTP/1.1\r\nConnection: close\r\n\r\n",
      raw("GET", "/tenants", ["Host: localhost", "Host: attacker.example"]),
      raw("GET", "/tenants", ["Host: attacker.example", "Host: localhost"]),
      raw("GET", "/tenants", ["Host: l\u043ecalhost"]),
      raw("GET", "/tenants", ["Host: \uff4cocalhost"]),
      raw("GET", "/tenants", ["Host: localhost\u00e9"]),
      raw("GET", "/tenants", ["Host: attacker.example@localhost"]),
      raw("GET", "/tenants", ["Host: localhost@attacker.example"]),
      raw("GET", "/tenants", ["Host: local%68ost"]),
      raw("GET", "/tenants", ["Host:"]),
    ];
    for (const request of cases) {
      const res = await rawRequest(port, request);
      expect(res.status, JSON.stringify(request)).toBe(400);
    }
  });

  test("an absolute-form target is judged by Host, which is what names the target", async () => {
    // A browser sends absolute-form only to its proxy, and then Host carries the same name.
    const smuggled = raw(
      "POST",
      `http://127.0.0.1:${port}/tenants`,
      ["Host: attacker.example", "Content-Type: application/json"],
      '{"id":"pwned","plan":"basic"}',
    );
    expect((await rawRequest(port, smuggled)).status).toBe(421);
    // Bun drops a target's authority: this one is served as addressed to Host (a local client).
    const local = raw("GET", "http://attacker.example/tenants", [`Host: localhost:${port}`]);
    expect((await rawRequest(port, local)).status).toBe(200);
    expect(await tenantIds()).not.toContain("pwned");
  });

  test("GET /healthz answers whatever the Host", async () => {
    const res = await rawRequest(port, raw("GET", "/healthz", ["Host: attacker.example"]));
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ status: "ok" });
  });

  test("cross-site writes are refused; same-origin and non-browser writes are not", async () => {
    const own = `http://127.0.0.1:${port}`;
    const send = (method: string, path: string, headers: Record<string, string>, body?: unknown) =>
      fetch(`${gw.adminUrl}${path}`, {
        method,
        headers: { "content-type": "application/json", ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    expect((await send("POST", "/tenants", { origin: own }, { id: "victim", plan: "basic" })).status).toBe(
      201,
    );
    const foreign: Record<string, string>[] = [
      { origin: "http://attacker.example" },
      { origin: "null" },
      { "sec-fetch-site": "cross-site" },
      { "sec-fetch-site": "same-site" },
    ];
    for (const headers of foreign) {
      const attempts = [
        send("POST", "/tenants", headers, { id: "pwned", plan: "basic" }),
        send("PATCH", "/tenants/victim", headers, { plan: "readonly" }),
        send("DELETE", "/tenants/victim", headers),
        send("OPTIONS", "/tenants", { ...headers, "access-control-request-method": "POST" }),
      ];
      for (const res of await Promise.all(attempts)) {
        expect(res.status).toBe(403);
        expect([...res.headers.keys()].filter((k) => k.startsWith("access-control-"))).toEqual([]);
        await res.body?.cancel();
      }
    }
    const victim = await fetch(`${gw.adminUrl}/tenants/victim`);
    expect(((await victim.json()) as { plan: string }).plan).toBe("basic");
    expect((await send("DELETE", "/tenants/victim", {})).status).toBe(204);
    expect(await tenantIds()).not.toContain("pwned");
  });

  test("a text/plain body gets 415 and creates nothing", async () => {
    const res = await rawRequest(
      port,
      raw(
        "POST",
        "/tenants",
        [`Host: 127.0.0.1:${port}`, "Content-Type: text/plain"],
        '{"id":"typed","plan":"basic"}',
      ),
    );
    expect(res.status).toBe(415);
    expect(await tenantIds()).not.toContain("typed");
  });
});

describe("a token-protected listener", () => {
  const clock = new ManualClock();
  let gw: TestGateway;
  beforeAll(() => {
    gw = startTestGateway(basicConfig(UNUSED_UPSTREAM, `server:\n  adminToken: ${TOKEN}\n`), { clock });
  });
  afterAll(() => gw.close());

  const withToken = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

  test("ten wrong tokens, then the right one is served at once; the wrong guesses are throttled", async () => {
    for (let i = 0; i < 10; i++) {
      const res = await fetch(`${gw.adminUrl}/tenants`, withToken("wrong-guess-wrong-guess"));
      expect(res.status).toBe(401);
      await res.body?.cancel();
    }
    expect((await fetch(`${gw.adminUrl}/tenants`, withToken(TOKEN))).status).toBe(200);
    const limited = await fetch(`${gw.adminUrl}/tenants`, withToken("wrong-guess-wrong-guess"));
    expect(limited.status).toBe(429);
    expect(limited.headers.get("retry-after")).toBe("60");
    expect((await fetch(`${gw.adminUrl}/config`, withToken(TOKEN))).status).toBe(200);
    clock.advance(60_000);
    expect((await fetch(`${gw.adminUrl}/tenants`, withToken("wrong-guess-wrong-guess"))).status).toBe(401);
  });

  test("the Host is not checked: the token protects a listener on any address", async () => {
    const request = raw("GET", "/tenants", ["Host: 10.0.0.7:8081", `Authorization: Bearer ${TOKEN}`]);
    expect((await rawRequest(portOf(gw.adminUrl), request)).status).toBe(200);
  });
});

describe("server.adminHosts with a token", () => {
  let listed: TestGateway;
  beforeAll(() => {
    listed = startTestGateway(
      basicConfig(UNUSED_UPSTREAM, `server:\n  adminToken: ${TOKEN}\n  adminHosts: [gatehouse.internal]\n`),
    );
  });
  afterAll(() => listed.close());

  test("only the listed names and the loopback names are served", async () => {
    const request = (host: string) =>
      raw("GET", "/tenants", [`Host: ${host}`, `Authorization: Bearer ${TOKEN}`]);
    const listedPort = portOf(listed.adminUrl);
    expect((await rawRequest(listedPort, request("gatehouse.internal:8081"))).status).toBe(200);
    expect((await rawRequest(listedPort, request(`localhost:${listedPort}`))).status).toBe(200);
    expect((await rawRequest(listedPort, request("10.0.0.7:8081"))).status).toBe(421);
  });
});
