/**
 * Slow clients against a real gatehouse process. Bun closes a connection whose request head has not
 * completed after about 10-14 s, however steadily its header lines arrive (measured: one line a
 * second, or ten, is closed at about 12 s, whatever idleTimeout says), on both listeners. Here 400
 * slowloris clients trickle request heads at the data listener and one at the admin listener; a
 * normal client's requests must all succeed while they are connected, and every one of them must be
 * closed by the server while it is still trickling. No timing is asserted but the generous 40 s a
 * trickler keeps going before giving up.
 */
import { expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { startTestGateway } from "./support/gateway.ts";
import { KEY, startOnDb, stopProcess, tempDir } from "./support/store-faults.ts";

const SLOW_CLIENTS = 400;
const GIVE_UP_MS = 40_000;
const LINE_EVERY_MS = 500;

interface Trickler {
  socket: Socket;
  /** Set when the server closed the connection. */
  closed: boolean;
}

function trickle(url: string): Trickler {
  const { hostname, port } = new URL(url);
  const t: Trickler = { socket: connect(Number(port), hostname), closed: false };
  t.socket.on("close", () => {
    t.closed = true;
  });
  t.socket.on("error", () => {});
  t.socket.write(`GET /v1/slow HTTP/1.1\r\nHost: ${hostname}\r\n`);
  return t;
}

test("400 slowloris clients neither block a normal client nor stay connected (data and admin listeners)", async () => {
  const dir = tempDir("gatehouse-slow-");
  const gh = await startOnDb(":memory:", dir);
  const tricklers: Trickler[] = [];
  let timer: ReturnType<typeof setInterval> | undefined;
  try {
    for (let i = 0; i < SLOW_CLIENTS; i++) tricklers.push(trickle(gh.dataUrl));
    const admin = trickle(gh.adminUrl);
    tricklers.push(admin);
    const started = Date.now();
    let line = 0;
    // Header lines keep coming, never the blank line that ends the head.
    timer = setInterval(() => {
      line++;
      for (const t of tricklers) if (!t.closed) t.socket.write(`X-Slow-${line}: ${"x".repeat(20)}\r\n`);
    }, LINE_EVERY_MS);

    // While they are all connected, a normal client is served on both listeners.
    const statuses: number[] = [];
    for (let round = 0; round < 10; round++) {
      const batch = await Promise.all([
        ...Array.from({ length: 10 }, () =>
          fetch(`${gh.dataUrl}/v1/items`, { headers: { "x-api-key": KEY } }).then(async (r) => {
            await r.arrayBuffer();
            return r.status;
          }),
        ),
        fetch(`${gh.adminUrl}/healthz`).then(async (r) => {
          await r.arrayBuffer();
          return r.status;
        }),
      ]);
      statuses.push(...batch);
    }
    expect(statuses).toEqual(Array(110).fill(200));
    expect(tricklers.filter((t) => t.closed)).toHaveLength(0);

    // Then the server closes every one of them, each while it is still trickling.
    while (tricklers.some((t) => !t.closed) && Date.now() - started < GIVE_UP_MS) await Bun.sleep(200);
    expect(tricklers.filter((t) => !t.closed)).toHaveLength(0);
    expect(admin.closed).toBe(true);
  } finally {
    clearInterval(timer);
    for (const t of tricklers) t.socket.destroy();
    expect(await stopProcess(gh)).toBe(0);
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);

// Bun bounds a slow request body by idleTimeout (measured: a body trickling one byte a second is
// closed at about idleTimeout + 2 s), and not at all when it is 0. So server.idleTimeout: 0s must
// not switch that bound off: it counts as 1 s.
test("a request body that trickles in forever is closed, even with server.idleTimeout: 0s", async () => {
  const gw = startTestGateway(
    "version: 1\nserver: { idleTimeout: 0s }\nupstreams: { echo: { mock: echo } }\n" +
      'plans: { p: { rules: [{ allow: "* /**" }] } }\nroutes: [{ match: "* /**", upstream: echo }]\n' +
      `tenants: { acme: { plan: p, keys: [{ id: k, secret: ${KEY} }] } }\n`,
  );
  const { hostname, port } = new URL(gw.dataUrl);
  const socket = connect(Number(port), hostname);
  let closed = false;
  socket.on("close", () => {
    closed = true;
  });
  socket.on("error", () => {});
  socket.write(
    `POST /v1/upload HTTP/1.1\r\nHost: ${hostname}\r\nX-API-Key: ${KEY}\r\nContent-Length: 100000\r\n\r\n`,
  );
  const started = Date.now();
  try {
    while (!closed && Date.now() - started < GIVE_UP_MS) {
      socket.write("x");
      await Bun.sleep(200);
    }
    expect(closed).toBe(true);
  } finally {
    socket.destroy();
    await gw.close();
  }
}, 60_000);
