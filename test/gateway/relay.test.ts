/**
 * Bodies both ways and clients that leave, as the usage row records them: exact byte counts for
 * whole, streamed and chunked bodies, and client_aborted with the upstream request stopped, through
 * the HTTP/1.1 client and through Bun's fetch alike.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Socket, TCPSocketListener } from "bun";
import { startTestGateway, type TestGateway } from "../support/gateway.ts";

const START = Date.UTC(2027, 0, 1);
const ACME = { "x-api-key": "acme-secret-0001" };

interface Conn {
  received: string;
  /** The request line of the last request on this connection. */
  last: string;
  closed: boolean;
}

describe.each([
  ["the HTTP/1.1 client", undefined],
  ["Bun's fetch", fetch],
] as const)("through %s", (_, client) => {
  let gw: TestGateway;
  let upstream: TCPSocketListener<Conn>;
  const conns: Conn[] = [];

  beforeAll(() => {
    // Answers by path: /small (whole), /chunked (two chunks), /upload (echoes the body's size),
    // /hang (never), /drip (one chunk, then nothing).
    upstream = Bun.listen<Conn>({
      hostname: "127.0.0.1",
      port: 0,
      socket: {
        open(s) {
          s.data = { received: "", last: "", closed: false };
          conns.push(s.data);
        },
        data(s: Socket<Conn>, chunk) {
          s.data.received += chunk.toString("latin1");
          const r = s.data.received;
          if (!r.includes("\r\n\r\n")) return;
          s.data.last = r.slice(0, r.indexOf("\r\n"));
          if (r.startsWith("POST /upload")) {
            if (!r.endsWith("\r\n0\r\n\r\n")) return; // the rest of the chunked body is on its way
            s.write("HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\nok");
          }
          if (r.startsWith("GET /small")) s.write("HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\nhello world");
          if (r.startsWith("GET /chunked")) {
            s.write("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n6\r\nhello \r\n");
            setTimeout(() => s.write("5\r\nworld\r\n0\r\n\r\n"), 5);
          }
          if (r.startsWith("GET /drip"))
            s.write("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n");
          s.data.received = "";
        },
        close(s) {
          s.data.closed = true;
        },
      },
    });
    gw = startTestGateway(
      `version: 1
upstreams: { up: { url: "http://127.0.0.1:${upstream.port}" } }
plans: { all: { rules: [{ allow: "* /**" }] } }
routes: [{ match: "* /**", upstream: up }]
tenants: { acme: { plan: all, keys: [{ id: acme-key, secret: acme-secret-0001 }] } }
`,
      { testClockStart: START, ...(client ? { fetch: client } : {}) },
    );
  });
  afterAll(async () => {
    await gw.close();
    upstream.stop(true);
  });

  const serving = (path: string) => conns.find((c) => c.last.startsWith(`GET ${path} `) && !c.closed);
  /** The usage row of the request with this id. */
  const row = async (requestId: string) => {
    for (let i = 0; i < 200; i++) {
      const text = await (
        await fetch(`${gw.adminUrl}/usage/export?format=ndjson&from=${START}&to=${START + 60_000}`)
      ).text();
      const found = text
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((r) => r.request_id === requestId);
      if (found) return found;
      await Bun.sleep(5);
    }
    throw new Error(`no usage row for ${requestId}`);
  };
  const waitFor = async (ok: () => boolean) => {
    for (let i = 0; !ok() && i < 1000; i++) await Bun.sleep(2);
    expect(ok()).toBe(true);
  };

  test("a whole body and a chunked one reach the client, counted exactly", async () => {
    const small = await fetch(`${gw.dataUrl}/small`, { headers: ACME });
    expect(await small.text()).toBe("hello world");
    expect(await row(small.headers.get("x-request-id")!)).toMatchObject({
      status: 200,
      outcome: "ok",
      bytes_out: 11,
    });
    const chunked = await fetch(`${gw.dataUrl}/chunked`, { headers: ACME });
    expect(await chunked.text()).toBe("hello world");
    expect(await row(chunked.headers.get("x-request-id")!)).toMatchObject({ outcome: "ok", bytes_out: 11 });
  });

  test("a body sent without a length arrives whole, counted in bytes_in", async () => {
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode("x".repeat(1000)));
        c.enqueue(new TextEncoder().encode("y".repeat(234)));
        c.close();
      },
    });
    const res = await fetch(`${gw.dataUrl}/upload`, {
      method: "POST",
      headers: ACME,
      body,
      duplex: "half",
    } as RequestInit);
    expect(res.status).toBe(201);
    expect(await row(res.headers.get("x-request-id")!)).toMatchObject({ bytes_in: 1234, status: 201 });
  });

  test("a client that leaves before the answer: the upstream request is stopped, the row says so", async () => {
    const controller = new AbortController();
    const pending = fetch(`${gw.dataUrl}/hang`, { headers: ACME, signal: controller.signal }).catch(
      () => null,
    );
    await waitFor(() => serving("/hang") !== undefined);
    const conn = serving("/hang")!;
    controller.abort();
    await pending;
    await waitFor(() => conn.closed);
    for (let i = 0; i < 200; i++) {
      const text = await (
        await fetch(`${gw.adminUrl}/usage/export?format=ndjson&from=${START}&to=${START + 60_000}`)
      ).text();
      const hang = text.split("\n").find((l) => l.includes('"path":"/hang"'));
      if (hang) {
        expect(JSON.parse(hang)).toMatchObject({ status: 499, outcome: "client_aborted", bytes_out: 0 });
        return;
      }
      await Bun.sleep(5);
    }
    throw new Error("no usage row for /hang");
  });

  test("a client that leaves mid-body: the upstream connection closes, the row says client_aborted", async () => {
    const res = await fetch(`${gw.dataUrl}/drip`, { headers: ACME });
    const reader = res.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe("first");
    const conn = serving("/drip")!;
    await reader.cancel();
    await waitFor(() => conn.closed);
    expect(await row(res.headers.get("x-request-id")!)).toMatchObject({
      status: 200,
      outcome: "client_aborted",
      bytes_out: 5,
    });
  });
});
