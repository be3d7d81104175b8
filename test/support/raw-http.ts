/** Sends bytes exactly as written, for requests no HTTP client library would produce. */
export interface RawResponse {
  status: number;
  head: string;
  body: string;
}

export async function rawRequest(port: number, text: string | Uint8Array): Promise<RawResponse> {
  let data = "";
  const { promise, resolve } = Promise.withResolvers<void>();
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: {
      data(_s, chunk) {
        data += chunk.toString("latin1");
      },
      close: () => resolve(),
      end: () => resolve(),
      error: () => resolve(),
    },
  });
  socket.write(text);
  socket.flush();
  // Each request asks for Connection: close, so the server ends the exchange.
  await Promise.race([promise, Bun.sleep(3000)]);
  socket.end();
  const split = data.indexOf("\r\n\r\n");
  const head = split < 0 ? data : data.slice(0, split);
  return {
    status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0),
    head,
    body: split < 0 ? "" : data.slice(split + 4),
  };
}

export const get = (target: string, headers: string[] = []) =>
  [`GET ${target} HTTP/1.1`, "Host: gateway.test", ...headers, "Connection: close", "", ""].join("\r\n");
