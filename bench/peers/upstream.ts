// The benchmark upstream: a small JSON body, keep-alive, no work (the shared benchmark's, on $PORT).
const body = JSON.stringify({
  ok: true,
  items: [
    { id: 1, name: "widget" },
    { id: 2, name: "gadget" },
  ],
});
Bun.serve({
  port: Number(process.env.PORT ?? 9100),
  hostname: "127.0.0.1",
  fetch: () => new Response(body, { headers: { "content-type": "application/json" } }),
});
