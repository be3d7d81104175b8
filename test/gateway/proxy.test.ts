import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { basicConfig, startTestGateway as startGateway, type TestGateway } from "../support/gateway.ts";
import { type RecordingUpstream, startUpstream } from "../support/upstream.ts";

const ACME = { "x-api-key": "acme-secret-0001" };

// Every behaviour holds through gatehouse's HTTP/1.1 client and through Bun's fetch, which carries
// requests where the client cannot go (an HTTP proxy from the environment, an injected fetch).
describe.each([
  ["the HTTP/1.1 client", undefined],
  ["Bun's fetch", fetch],
] as const)("through %s", (_, client) => {
  const startTestGateway = (yaml: string) => startGateway(yaml, client ? { fetch: client } : {});
  let up: RecordingUpstream;
  let gw: TestGateway;

  beforeAll(() => {
    up = startUpstream();
    gw = startTestGateway(basicConfig(up.url));
  });
  afterAll(async () => {
    await gw.close();
    await up.stop();
  });

  const last = () => up.received.at(-1)!;
  const get = (path: string, headers: Record<string, string> = ACME, init: RequestInit = {}) =>
    fetch(gw.dataUrl + path, { headers, ...init });

  describe("forwarding", () => {
    test("forwards the canonical path and query, with identity and injected headers", async () => {
      const res = await get("/v1/items?page=2&sort=name");
      expect(res.status).toBe(200);
      expect(res.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
      const r = last();
      expect(r.target).toBe("/v1/items?page=2&sort=name");
      expect(r.headers["x-gatehouse-tenant"]).toBe("acme");
      expect(r.headers["x-gatehouse-key-id"]).toBe("acme-key");
      expect(r.headers["x-request-id"]).toBe(res.headers.get("x-request-id")!);
      expect(r.headers.authorization).toBe("Bearer upstream-secret");
      expect(r.headers["x-api-key"]).toBeUndefined();
      expect(r.headers.host).toBe(`127.0.0.1:${up.port}`);
    });

    test("never forwards the client's key, whichever header carried it", async () => {
      await get("/v1/a", { authorization: "Bearer acme-secret-0001" });
      expect(JSON.stringify(last().headers)).not.toContain("acme-secret-0001");
      await get("/v1/a", { "x-api-key": "acme-secret-0001", authorization: "Bearer acme-secret-0001" });
      expect(JSON.stringify(last().headers)).not.toContain("acme-secret-0001");
    });

    test("removes a key from the query string, by name or by value", async () => {
      await get("/v1/a?api_key=zzz&x=1&token2=acme-secret-0001&APIKEY=q&y=2");
      expect(last().target).toBe("/v1/a?x=1&y=2");
    });

    test("a key in the query string is not accepted", async () => {
      const res = await get("/v1/a?api_key=acme-secret-0001", {});
      expect(res.status).toBe(401);
    });

    test("strips spoofed identity, method-override and forwarding headers", async () => {
      await get("/v1/a", {
        ...ACME,
        "x-gatehouse-tenant": "globex",
        "X-Gatehouse-Key-Id": "globex-key",
        "x-gatehouse-anything": "1",
        "x-tenant-id": "globex",
        "x-consumer-id": "globex",
        "x-http-method-override": "DELETE",
        "x-method-override": "DELETE",
        "x-request-id": "spoofed id",
        "x-forwarded-for": "6.6.6.6",
        forwarded: "for=6.6.6.6",
        "x-real-ip": "6.6.6.6",
      });
      const h = last().headers;
      expect(h["x-gatehouse-tenant"]).toBe("acme");
      expect(h["x-gatehouse-key-id"]).toBe("acme-key");
      expect(h["x-gatehouse-anything"]).toBeUndefined();
      expect(h["x-tenant-id"]).toBeUndefined();
      expect(h["x-consumer-id"]).toBeUndefined();
      expect(h["x-http-method-override"]).toBeUndefined();
      expect(h["x-method-override"]).toBeUndefined();
      expect(h["x-request-id"]).not.toBe("spoofed id");
      expect(h["x-forwarded-for"]).toBe("127.0.0.1");
      expect(h.forwarded).toBeUndefined();
      expect(h["x-real-ip"]).toBeUndefined();
      expect(last().method).toBe("GET");
    });

    test("strips headers that would tell the upstream another path, host, scheme, client or user", async () => {
      const spoofed = [
        "X-Original-URL",
        "X-Original-URI",
        "X-Rewrite-URL",
        "X-Override-URL",
        "X-Original-Host",
        "X-Host",
        "X-HTTP-Host-Override",
        "X-Forwarded-Server",
        "X-Forwarded-Uri",
        "X-Forwarded-Path",
        "X-Forwarded-Scheme",
        "X-Forwarded-Ssl",
        "X-Forwarded-User",
        "X-Forwarded-Client-Cert",
        "X-Url-Scheme",
        "Front-End-Https",
        "CF-Visitor",
        "True-Client-IP",
        "X-Client-IP",
        "X-Cluster-Client-IP",
        "X-Originating-IP",
        "X-Remote-IP",
        "X-Remote-Addr",
        "Client-IP",
        "CF-Connecting-IP",
        "Fastly-Client-IP",
        "X-ProxyUser-Ip",
        "X-Original-Forwarded-For",
        "X-Envoy-Internal",
        "X-Envoy-Original-Path",
        "X-Envoy-Max-Retries",
        "Remote-User",
        "X-Auth-Request-User",
        "X-Amzn-Oidc-Identity",
        "X-MS-Client-Principal-Name",
        "X-Goog-Authenticated-User-Email",
      ];
      await get("/v1/a", {
        ...ACME,
        ...Object.fromEntries(spoofed.map((n) => [n, "spoofed"])),
        "x-kept": "yes",
      });
      const h = last().headers;
      expect(Object.keys(h).filter((n) => spoofed.some((s) => s.toLowerCase() === n))).toEqual([]);
      expect(JSON.stringify(h)).not.toContain("spoofed");
      expect(h["x-kept"]).toBe("yes");
    });

    test("a configured header cannot be shadowed by the client in either spelling", async () => {
      const g = startTestGateway(`version: 1
upstreams:
  up: { url: "${up.url}", headers: { x-upstream-token: configured, x_legacy_token: configured } }
plans:
  all: { rules: [{ allow: "* /**" }] }
routes: [{ match: "* /**", upstream: up }]
tenants:
  acme: { plan: all, keys: [{ id: acme-key, secret: acme-secret-0001 }] }
`);
      try {
        // Bun's fetch sends header names as given; the recording upstream lowercases them.
        const res = await fetch(`${g.dataUrl}/shadow`, {
          headers: {
            ...ACME,
            X_Upstream_Token: "client",
            "X-Legacy-Token": "client",
            x_legacy_token: "client",
          },
        });
        expect(res.status).toBe(200);
        const h = last().headers;
        expect(h["x-upstream-token"]).toBe("configured");
        expect(h.x_legacy_token).toBe("configured");
        expect(h.x_upstream_token).toBeUndefined();
        expect(h["x-legacy-token"]).toBeUndefined();
      } finally {
        await g.close();
      }
    });

    test("strips hop-by-hop headers, including those the client names in Connection", async () => {
      await get("/v1/a", {
        ...ACME,
        connection: "keep-alive, x-secret-hop",
        "x-secret-hop": "1",
        "keep-alive": "timeout=5",
        te: "trailers",
        "x-kept": "yes",
      });
      const h = last().headers;
      expect(h["x-secret-hop"]).toBeUndefined();
      expect(h["keep-alive"]).toBeUndefined();
      expect(h.te).toBeUndefined();
      expect(h["x-kept"]).toBe("yes");
    });

    test("streams a request body through and reports the response status", async () => {
      up.on("/v1/created", () => new Response("made", { status: 201 }));
      const res = await get("/v1/created", ACME, { method: "POST", body: "x".repeat(100_000) });
      expect(res.status).toBe(201);
      expect(await res.text()).toBe("made");
      expect(last().body.length).toBe(100_000);
    });

    test("per-tenant upstream override and the echo mock", async () => {
      const res = await get("/echo/hello?q=1", ACME, { method: "PUT", body: "payload" });
      const echo = (await res.json()) as {
        upstream: string;
        method: string;
        path: string;
        query: string;
        body: string;
        headers: Record<string, string>;
      };
      expect(echo).toMatchObject({
        upstream: "echo",
        method: "PUT",
        path: "/echo/hello",
        query: "q=1",
        body: "payload",
      });
      expect(echo.headers["x-gatehouse-tenant"]).toBe("acme");
      expect(JSON.stringify(echo)).not.toContain("acme-secret-0001");
    });
  });

  describe("upstream behaviour", () => {
    test("passes compressed bodies through untouched, with their Content-Encoding", async () => {
      const gz = Bun.gzipSync("compressed hello");
      up.on(
        "/v1/gz",
        () => new Response(gz, { headers: { "content-encoding": "gzip", "content-type": "text/plain" } }),
      );
      const res = await get("/v1/gz", { ...ACME, "accept-encoding": "gzip" }, {
        decompress: false,
      } as RequestInit);
      expect(res.headers.get("content-encoding")).toBe("gzip");
      const bytes = new Uint8Array(await res.arrayBuffer());
      expect(new TextDecoder().decode(Bun.gunzipSync(bytes))).toBe("compressed hello");
    });

    test("never follows redirects and does not reveal the upstream's address in Location", async () => {
      up.on(
        "/v1/moved",
        () => new Response(null, { status: 302, headers: { location: `${up.url}/v1/new?x=1` } }),
      );
      up.on(
        "/v1/away",
        () => new Response(null, { status: 301, headers: { location: "https://elsewhere.example/x" } }),
      );
      const res = await get("/v1/moved", ACME, { redirect: "manual" });
      expect(res.status).toBe(302);
      expect(res.headers.get("location")).toBe("/v1/new?x=1");
      const away = await get("/v1/away", ACME, { redirect: "manual" });
      expect(away.headers.get("location")).toBe("https://elsewhere.example/x");
      expect(up.received.filter((r) => r.target.startsWith("/v1/new")).length).toBe(0);
    });

    test("a Location back at the upstream never becomes a reference to another host", async () => {
      // Each is the upstream's own address with a path a careless relative form reads as `//host`.
      const tricks = {
        double: [`${up.url}//evil.example/x`, "/evil.example/x"],
        triple: [`${up.url}///evil.example/x?q=1`, "/evil.example/x?q=1"],
        backslash: [`${up.url}/\\evil.example/x`, "/evil.example/x"],
        "slash-backslash": [`${up.url}\\/evil.example/x`, "/evil.example/x"],
        tab: [`${up.url}/\t/evil.example/x`, "/evil.example/x"],
        "dot-segment": ["/.//evil.example/x", "/evil.example/x"],
        "dot-dot": ["/v1/..//evil.example/x", "/evil.example/x"],
        encoded: [`${up.url}/%2F%2Fevil.example/x`, "/%2F%2Fevil.example/x"],
        "encoded-backslash": [`${up.url}/%5C%5Cevil.example/x`, "/%5C%5Cevil.example/x"],
      } as const;
      for (const [name, [location, expected]] of Object.entries(tricks)) {
        up.on(`/v1/trick-${name}`, () => new Response(null, { status: 302, headers: { location } }));
        const res = await get(`/v1/trick-${name}`, ACME, { redirect: "manual" });
        expect(res.status).toBe(302);
        const got = res.headers.get("location")!;
        expect(got, name).toBe(expected);
        // How a browser reads it: on the gateway's own host.
        expect(new URL(got, gw.dataUrl).host, name).toBe(new URL(gw.dataUrl).host);
      }
    });

    test("Content-Location, Refresh and Link back at the upstream are made relative too", async () => {
      up.on("/v1/urls", () => {
        const h = new Headers({
          "content-location": `${up.url}//evil.example/doc`,
          refresh: `0;URL='${up.url}//evil.example/next'`,
          link: `<${up.url}/v1/urls?page=2>; rel="next", <https://docs.example/api>; rel="help", <${up.url}//evil.example>; rel="prev"`,
        });
        return new Response("ok", { headers: h });
      });
      up.on("/v1/refresh", () => new Response("ok", { headers: { refresh: `5; url=${up.url}/v1/next` } }));
      const res = await get("/v1/urls");
      expect(res.headers.get("content-location")).toBe("/evil.example/doc");
      expect(res.headers.get("refresh")).toBe("0;URL='/evil.example/next'");
      expect(res.headers.get("link")).toBe(
        '</v1/urls?page=2>; rel="next", <https://docs.example/api>; rel="help", </evil.example>; rel="prev"',
      );
      const refresh = await get("/v1/refresh");
      expect(refresh.headers.get("refresh")).toBe("5; url=/v1/next");
    });

    test("with a base path, references are resolved against the URL the upstream answered", async () => {
      const g = startTestGateway(basicConfig(`${up.url}/api`));
      try {
        const cases = {
          absolute: [`${up.url}/api/v1/new?x=1`, "/v1/new?x=1"],
          "absolute-path": ["/api/v1/new", "/v1/new"],
          relative: ["sibling", "/v1/items/sibling"],
          base: [`${up.url}/api`, "/"],
          "double-after-base": [`${up.url}/api//evil.example/x`, "/evil.example/x"],
        } as const;
        for (const [name, [location, expected]] of Object.entries(cases)) {
          up.on("/api/v1/items/", () => new Response(null, { status: 303, headers: { location } }));
          const res = await fetch(`${g.dataUrl}/v1/items/1`, { headers: ACME, redirect: "manual" });
          expect(res.headers.get("location"), name).toBe(expected);
        }
      } finally {
        await g.close();
      }
    });

    test("strips hop-by-hop headers from responses and keeps every Set-Cookie", async () => {
      up.on("/v1/cookies", () => {
        const h = new Headers({ connection: "x-internal", "x-internal": "1", "x-public": "2" });
        h.append("set-cookie", "a=1; Path=/");
        h.append("set-cookie", "b=2; Path=/");
        return new Response("ok", { headers: h });
      });
      const res = await get("/v1/cookies");
      expect(res.headers.get("x-internal")).toBeNull();
      expect(res.headers.get("x-public")).toBe("2");
      expect(res.headers.getSetCookie()).toEqual(["a=1; Path=/", "b=2; Path=/"]);
    });

    test("a response that is slow to start is a 504 problem", async () => {
      up.on("/v1/slow", async () => {
        await Bun.sleep(1500);
        return new Response("late");
      });
      const res = await get("/v1/slow");
      expect(res.status).toBe(504);
      expect(res.headers.get("content-type")).toBe("application/problem+json");
      const body = await res.text();
      expect(body).not.toContain(String(up.port));
    });

    test("a body that stalls mid-way is cut off after the idle timeout", async () => {
      up.on("/v1/stall", () => {
        const stream = new ReadableStream({
          async start(c) {
            c.enqueue(new TextEncoder().encode("first chunk;"));
            await Bun.sleep(1500);
            c.close();
          },
        });
        return new Response(stream);
      });
      const res = await get("/v1/stall");
      expect(res.status).toBe(200);
      // Without the idle timeout this would resolve with the whole body once the upstream finishes.
      await expect(res.text()).rejects.toBeDefined();
    });

    test("a small declared body that stalls before its end is a 504, since nothing was sent yet", async () => {
      // Bun.serve re-frames streamed bodies as chunked, so a raw socket plays this upstream.
      const raw = Bun.listen({
        hostname: "127.0.0.1",
        port: 0,
        socket: {
          data(socket) {
            socket.write(
              "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nContent-Type: text/plain\r\n\r\nonly ten b",
            );
          },
        },
      });
      const g = startTestGateway(basicConfig(`http://127.0.0.1:${raw.port}`));
      try {
        const res = await fetch(`${g.dataUrl}/v1/short`, { headers: ACME });
        expect(res.status).toBe(504);
      } finally {
        await g.close();
        raw.stop(true);
      }
    });

    test("a large response streams through whole", async () => {
      const big = new Uint8Array(3 * 1024 * 1024).map((_, i) => i % 251);
      up.on("/v1/big", () => new Response(big, { headers: { "content-type": "application/octet-stream" } }));
      const res = await get("/v1/big");
      expect(res.status).toBe(200);
      const got = new Uint8Array(await res.arrayBuffer());
      expect(got.length).toBe(big.length);
      expect(Bun.hash(got)).toBe(Bun.hash(big));
    });

    test("an unreachable upstream is a 502 that names no address", async () => {
      const dead = startUpstream();
      const deadUrl = dead.url;
      await dead.stop();
      const g = startTestGateway(basicConfig(deadUrl));
      try {
        const res = await fetch(`${g.dataUrl}/v1/x`, { headers: ACME });
        expect(res.status).toBe(502);
        const text = await res.text();
        expect(text).not.toContain(deadUrl.split(":").at(-1)!);
        expect(text).not.toContain("upstream-secret");
      } finally {
        await g.close();
      }
    });
  });
});
