// The bare proxy plus the one piece of work gatehouse's contract requires of every request that has
// nothing to do with policy: its usage row, recorded through gatehouse's own writer thread into the
// same schema, with the same tenants and keys as the real traffic. Its distance from the bare proxy
// is the part of gatehouse's distance that the usage row alone accounts for.
import { openDb } from "../../src/db/open.ts";
import { WriterThread } from "../../src/db/writer-thread.ts";
import { usageSettings } from "../../src/usage/config.ts";

const upstream = process.env.UPSTREAM ?? "http://127.0.0.1:9100";
const path = process.env.DB ?? "./bun-proxy-usage.db";
openDb(path).close(); // creates and migrates the schema
const writes = new WriterThread(path, usageSettings(), (level, msg, fields) =>
  console.error(level, msg, fields ?? ""),
);

Bun.serve({
  port: Number(process.env.PORT ?? 9202),
  hostname: "127.0.0.1",
  async fetch(req) {
    const ts = Date.now();
    const started = performance.now();
    const u = new URL(req.url);
    const res = await fetch(upstream + u.pathname + u.search, {
      method: req.method,
      headers: req.headers,
      body: req.body,
    });
    // The benchmark's keys are key-<tenant>-0.
    const tenant = (req.headers.get("x-api-key") ?? "").split("-")[1] ?? "";
    writes.recordRow({
      ts,
      requestId: Bun.randomUUIDv7(),
      tenantId: `t${tenant}`,
      keyId: `k${tenant}-0`,
      route: "* /v1/**",
      method: req.method,
      path: u.pathname,
      status: res.status,
      outcome: "ok",
      cost: 1,
      bytesIn: 0,
      bytesOut: Number(res.headers.get("content-length") ?? 0),
      latencyMs: performance.now() - started,
      upstreamMs: performance.now() - started,
      wouldRefuse: null,
    });
    return res;
  },
});

process.on("SIGTERM", async () => {
  await writes.close();
  process.exit(0);
});
