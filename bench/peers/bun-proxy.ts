// The floor for any gateway built on Bun: a pass-through fetch proxy with no policy at all.
const upstream = process.env.UPSTREAM ?? "http://127.0.0.1:9100";
Bun.serve({
  port: Number(process.env.PORT ?? 9201),
  hostname: "127.0.0.1",
  fetch(req) {
    const u = new URL(req.url);
    return fetch(upstream + u.pathname + u.search, {
      method: req.method,
      headers: req.headers,
      body: req.body,
    });
  },
});
