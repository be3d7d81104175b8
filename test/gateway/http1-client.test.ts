/**
 * The HTTP/1.1 upstream client against scripted raw sockets: keep-alive and its limits, the retry of
 * a stale connection, strict framing, streamed bodies both ways, aborts and TLS. Timeouts run on a
 * manual scheduler; the proxy's behaviour through this client is tested in proxy.test.ts and
 * upstream-failures.test.ts.
 */
import { afterEach, describe, expect, test } from "bun:test";
import type { Socket, TCPSocketListener } from "bun";
import { BodyTooLarge } from "../../src/gateway/body.ts";
import { Http1Client } from "../../src/gateway/http1/client.ts";
import type { UpstreamTarget } from "../../src/gateway/upstream.ts";
import { CallAborted, type UpstreamAnswer, UpstreamTimeout } from "../../src/gateway/upstream-call.ts";
import { classifyUpstreamFailure } from "../../src/gateway/upstream-failure.ts";
import { Deadlines } from "../../src/lib/deadlines.ts";
import { ManualScheduler } from "../../src/lib/scheduler.ts";

const fixtures = `${import.meta.dir}/../../fixtures/tls`;

interface Conn {
  socket: Socket<Conn>;
  received: string;
  /** Complete requests seen on this connection. */
  requests: number;
}

/**
 * A TCP server that hands each complete request (head, and a body framed by Content-Length or
 * chunked) to `answer` with the connection it came on.
 */
function rawUpstream(answer: (c: Conn, request: string) => void, tls?: { key: string; cert: string }) {
  const conns: Conn[] = [];
  let closed = 0;
  const server: TCPSocketListener<Conn> = Bun.listen<Conn>({
    hostname: "127.0.0.1",
    port: 0,
    ...(tls ? { tls } : {}),
    socket: {
      open(s) {
        s.data = { socket: s, received: "", requests: 0 };
        conns.push(s.data);
      },
      data(s, chunk) {
        const c = s.data;
        c.received += chunk.toString("latin1");
        for (;;) {
          const end = complete(c.received);
          if (end < 0) return;
          const request = c.received.slice(0, end);
          c.received = c.received.slice(end);
          c.requests++;
          answer(c, request);
        }
      },
      close() {
        closed++;
      },
    },
  });
  servers.push(server);
  return { port: server.port, conns, closed: () => closed };
}

/** Where the first complete request in `text` ends, or -1. */
function complete(text: string): number {
  const head = text.indexOf("\r\n\r\n");
  if (head < 0) return -1;
  const length = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, head));
  if (length) return text.length >= head + 4 + Number(length[1]) ? head + 4 + Number(length[1]) : -1;
  if (/\r\ntransfer-encoding: *chunked/i.test(text.slice(0, head))) {
    const last = text.indexOf("\r\n0\r\n\r\n", head);
    return last < 0 ? -1 : last + 7;
  }
  return head + 4;
}

const servers: TCPSocketListener<Conn>[] = [];
const clients: Http1Client[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  for (const s of servers.splice(0)) s.stop(true);
});

function setup(port: number, o: { maxConnections?: number; https?: boolean; ca?: string } = {}) {
  let now = 0;
  const scheduler = new ManualScheduler(() => now);
  const housekeeping = new ManualScheduler(() => now);
  const client = new Http1Client({
    deadlines: new Deadlines({ scheduler, now: () => now }),
    housekeeping,
    now: () => now,
    ...(o.ca ? { ca: o.ca } : {}),
  });
  clients.push(client);
  const target = {
    name: "up",
    baseUrl: `${o.https ? "https" : "http"}://127.0.0.1:${port}`,
    timeoutMs: 1000,
    idleTimeoutMs: 500,
    maxConnections: o.maxConnections ?? 16,
  } as UpstreamTarget;
  const send = (method = "GET", path = "/", body: string | ReadableStream<Uint8Array> | null = null) => {
    const stream = typeof body === "string" ? new Blob([body]).stream() : body;
    return client.send({
      target,
      method,
      pathAndQuery: path,
      fields: ["x-test", "1", ...(typeof body === "string" ? ["content-length", String(body.length)] : [])],
      body: stream,
      declaredLength: typeof body === "string" ? body.length : null,
      maxBodyBytes: 64,
      onBodyBytes: () => {},
    });
  };
  const advance = (ms: number) => {
    now += ms;
    scheduler.runDue();
    housekeeping.runDue();
  };
  return { client, send, advance };
}

async function text(a: UpstreamAnswer): Promise<string | null> {
  if (a.body === null) return null;
  return new TextDecoder().decode(a.body.complete ?? (await a.body.read()));
}

const ok = (body = "ok", extra = "") =>
  `HTTP/1.1 200 OK\r\ncontent-length: ${body.length}\r\n${extra}\r\n${body}`;

describe("keep-alive", () => {
  test("reuses one connection for requests in turn", async () => {
    const up = rawUpstream((c) => c.socket.write(ok()));
    const { send } = setup(up.port);
    for (let i = 0; i < 3; i++) expect(await text(await send().answer)).toBe("ok");
    expect(up.conns).toHaveLength(1);
    expect(up.conns[0]!.requests).toBe(3);
  });

  test("opens no more than maxConnections; the rest wait their turn", async () => {
    const up = rawUpstream((c) => c.socket.write(ok()));
    const { send } = setup(up.port, { maxConnections: 2 });
    const answers = await Promise.all(Array.from({ length: 6 }, () => send().answer));
    expect(await Promise.all(answers.map(text))).toEqual(Array(6).fill("ok"));
    expect(up.conns.length).toBeLessThanOrEqual(2);
  });

  test("a GET that meets a connection the upstream closed is sent again, a POST is not", async () => {
    // Every connection answers its first request and closes on the second without a word.
    const up = rawUpstream((c) => (c.requests === 1 ? c.socket.write(ok()) : c.socket.end()));
    const { send } = setup(up.port);
    expect(await text(await send().answer)).toBe("ok");
    expect(await text(await send("GET").answer)).toBe("ok");
    expect(up.conns).toHaveLength(2);
    await expect(send("POST", "/", "payload").answer).rejects.toMatchObject({ code: "ECONNRESET" });
    expect(up.conns).toHaveLength(2);
  });

  test("a request that cannot be sent twice takes no connection idle for over a second", async () => {
    const up = rawUpstream((c) => c.socket.write(ok()));
    const { send, advance } = setup(up.port);
    await send().answer;
    advance(1000);
    await send("POST", "/", "payload").answer;
    expect(up.conns).toHaveLength(1);
    advance(1001);
    await send("POST", "/", "payload").answer;
    expect(up.conns).toHaveLength(2);
    // A GET may take one idle that long: if the upstream closed it meanwhile, it is sent again.
    advance(2000);
    await send().answer;
    expect(up.conns).toHaveLength(2);
  });

  test("a connection idle for 4 s is closed", async () => {
    const up = rawUpstream((c) => c.socket.write(ok()));
    const { send, advance } = setup(up.port);
    await send().answer;
    advance(3000);
    expect(up.closed()).toBe(0);
    advance(1000);
    for (let i = 0; up.closed() === 0 && i < 500; i++) await Bun.sleep(2);
    expect(up.closed()).toBe(1);
  });

  test("the upstream's Keep-Alive timeout shortens how long its connection waits idle", async () => {
    const up = rawUpstream((c) => c.socket.write(ok("ok", "keep-alive: timeout=2\r\n")));
    const { send, advance } = setup(up.port);
    await send().answer;
    advance(999);
    await send().answer;
    expect(up.conns).toHaveLength(1);
    advance(1000);
    await send().answer;
    expect(up.conns).toHaveLength(2);
  });

  test("bytes after the declared end mean the connection is not used again", async () => {
    const up = rawUpstream((c) => c.socket.write(`${ok()}HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nforge`));
    const { send } = setup(up.port);
    expect(await text(await send().answer)).toBe("ok");
    expect(await text(await send().answer)).toBe("ok");
    expect(up.conns).toHaveLength(2);
  });

  test("Connection: close and HTTP/1.0 answers are not reused", async () => {
    const answers = [
      ok("a", "connection: close\r\n"),
      "HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\nb",
      ok("c"),
    ];
    let n = 0;
    const up = rawUpstream((c) => c.socket.write(answers[n++]!));
    const { send } = setup(up.port);
    for (const expected of ["a", "b", "c"]) expect(await text(await send().answer)).toBe(expected);
    expect(up.conns).toHaveLength(3);
  });
});

describe("framing", () => {
  test.each([
    ["not HTTP", "SSH-2.0-OpenSSH\r\n\r\n"],
    ["HTTP/2", "HTTP/2 200 OK\r\ncontent-length: 0\r\n\r\n"],
    ["status out of range", "HTTP/1.1 600 Odd\r\ncontent-length: 0\r\n\r\n"],
    ["conflicting lengths", "HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok"],
    ["a length that is not a number", "HTTP/1.1 200 OK\r\ncontent-length: 2x\r\n\r\nok"],
    ["a folded header", "HTTP/1.1 200 OK\r\nx-a: 1\r\n continued\r\ncontent-length: 0\r\n\r\n"],
    ["a space before the colon", "HTTP/1.1 200 OK\r\ncontent-length : 0\r\n\r\n"],
    ["a bare CR", "HTTP/1.1 200 OK\r\nx-a: 1\rx-b: 2\r\ncontent-length: 0\r\n\r\n"],
    ["a NUL", "HTTP/1.1 200 OK\r\nx-a: 1\0\r\ncontent-length: 0\r\n\r\n"],
    ["chunked not last", "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, gzip\r\n\r\n0\r\n\r\n"],
    ["a bad chunk size", "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0x2\r\nok\r\n0\r\n\r\n"],
    ["an unrequested upgrade", "HTTP/1.1 101 Switching Protocols\r\nupgrade: h2c\r\n\r\n"],
  ])("refuses %s", async (_, response) => {
    const up = rawUpstream((c) => c.socket.write(response));
    const { send } = setup(up.port);
    const failed = send()
      .answer.then((a): unknown => (a.body ? a.body.read() : a))
      .catch((err) => err);
    expect(await failed).toMatchObject({ code: "HPE_INVALID_RESPONSE" });
  });

  test("refuses a response head over 64 KiB", async () => {
    const up = rawUpstream((c) => c.socket.write(`HTTP/1.1 200 OK\r\nx-big: ${"a".repeat(70_000)}\r\n\r\n`));
    const { send } = setup(up.port);
    await expect(send().answer).rejects.toMatchObject({ code: "HPE_HEADER_OVERFLOW" });
  });

  test("reads a head and chunked body that arrive a byte at a time, extensions and trailers aside", async () => {
    const response =
      "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nx-a:  spaced value \t\r\n\r\n" +
      "5;ext=1\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\ntrailer: x\r\n\r\n";
    const up = rawUpstream(async (c) => {
      for (const ch of response) {
        c.socket.write(ch);
        await Bun.sleep(0);
      }
    });
    const { send } = setup(up.port);
    const a = await send().answer;
    expect(a.fields).toEqual(["transfer-encoding", "chunked", "x-a", "spaced value"]);
    expect(await text(a)).toBe("hello world!");
    // Ended exactly where its framing said: the connection carries the next request.
    await send().answer;
    expect(up.conns).toHaveLength(1);
  });

  test("skips 1xx interim answers", async () => {
    const up = rawUpstream((c) =>
      c.socket.write(
        `HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n${ok("final")}`,
      ),
    );
    const { send } = setup(up.port);
    const a = await send().answer;
    expect(a.status).toBe(200);
    expect(await text(a)).toBe("final");
  });

  test("HEAD, 204 and 304 answers have no body, whatever they declare", async () => {
    const answers = [
      "HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n",
      "HTTP/1.1 204 No Content\r\ncontent-length: 5\r\n\r\n",
      "HTTP/1.1 304 Not Modified\r\ntransfer-encoding: chunked\r\n\r\n",
    ];
    let n = 0;
    const up = rawUpstream((c) => c.socket.write(answers[n++]!));
    const { send } = setup(up.port);
    for (const method of ["HEAD", "GET", "GET"]) {
      const a = await send(method).answer;
      expect(a.body).toBeNull();
    }
    expect(up.conns).toHaveLength(1);
  });

  test("a body with neither length nor chunked coding lasts until the upstream closes", async () => {
    const up = rawUpstream(async (c) => {
      c.socket.write("HTTP/1.1 200 OK\r\n\r\nfirst ");
      await Bun.sleep(5);
      c.socket.end("and last");
    });
    const { send } = setup(up.port);
    const a = await send().answer;
    expect(a.body!.length).toBeNull();
    expect(await text(a)).toBe("first and last");
  });
});

describe("bodies", () => {
  test("a request body without a length goes up chunked", async () => {
    let seen = "";
    const up = rawUpstream((c, request) => {
      seen = request;
      c.socket.write(ok());
    });
    const { send } = setup(up.port);
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode("hello "));
        c.enqueue(new TextEncoder().encode("world"));
        c.close();
      },
    });
    await send("POST", "/upload", body).answer;
    expect(seen).toStartWith("POST /upload HTTP/1.1\r\nhost: 127.0.0.1:");
    expect(seen).toContain("\r\ntransfer-encoding: chunked\r\n");
    expect(seen).toEndWith("\r\n\r\n6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n");
  });

  test("a request body over the limit fails the call", async () => {
    const up = rawUpstream(() => {});
    const { send } = setup(up.port);
    const body = new Blob(["x".repeat(100)]).stream();
    await expect(send("POST", "/", body).answer).rejects.toBeInstanceOf(BodyTooLarge);
  });

  test("a streamed response counts its bytes and reports its end once", async () => {
    const up = rawUpstream(async (c) => {
      c.socket.write("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n");
      await Bun.sleep(5);
      c.socket.write("2\r\nde\r\n0\r\n\r\n");
    });
    const { send } = setup(up.port);
    const a = await send().answer;
    const ends: [string, number][] = [];
    const tapped: number[] = [];
    const stream = a.body!.stream(
      (how, bytes) => ends.push([how, bytes]),
      (chunk) => tapped.push(chunk.byteLength),
    );
    expect(await new Response(stream).text()).toBe("abcde");
    expect(ends).toEqual([["complete", 5]]);
    expect(tapped.reduce((x, y) => x + y, 0)).toBe(5);
  });
});

describe("deadlines and aborts", () => {
  test("no head within the timeout, then no body bytes within the idle timeout", async () => {
    let requests = 0;
    const up = rawUpstream((c) => {
      if (++requests === 2) c.socket.write("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhalf");
    });
    const { send, advance } = setup(up.port);
    const first = send().answer;
    await Bun.sleep(10);
    advance(1000);
    await expect(first).rejects.toBeInstanceOf(UpstreamTimeout);
    const second = await send().answer;
    const body = second.body!.read();
    advance(500);
    await expect(body).rejects.toBeInstanceOf(UpstreamTimeout);
  });

  test("an abort closes the upstream connection", async () => {
    const up = rawUpstream(() => {});
    const { send } = setup(up.port);
    const call = send();
    for (let i = 0; up.conns[0]?.requests !== 1 && i < 500; i++) await Bun.sleep(2);
    call.abort();
    await expect(call.answer).rejects.toBeInstanceOf(CallAborted);
    for (let i = 0; up.closed() === 0 && i < 500; i++) await Bun.sleep(2);
    expect(up.closed()).toBe(1);
  });
});

describe("TLS", () => {
  const tls = async () => ({
    key: await Bun.file(`${fixtures}/upstream.key`).text(),
    cert: await Bun.file(`${fixtures}/upstream.pem`).text(),
  });

  test("speaks https to an upstream whose certificate it trusts", async () => {
    const up = rawUpstream((c) => c.socket.write(ok("secure")), await tls());
    const { send } = setup(up.port, { https: true, ca: await Bun.file(`${fixtures}/ca.pem`).text() });
    expect(await text(await send().answer)).toBe("secure");
  });

  test("refuses a certificate it cannot verify", async () => {
    const up = rawUpstream((c) => c.socket.write(ok()), await tls());
    const { send } = setup(up.port, { https: true });
    const err = await send().answer.catch((e) => e);
    expect(classifyUpstreamFailure(err, "headers", false)).toBe("tls");
  });
});
