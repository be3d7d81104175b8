/** Starts a real gateway (both listeners on free ports, in-memory database) from inline YAML. */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type RunningGateway, startGateway } from "../../src/app.ts";
import type { Clock } from "../../src/lib/clock.ts";
import { type Log, silentLog } from "../../src/lib/log.ts";

export interface TestGateway extends RunningGateway {
  readonly dir: string;
  readonly configPath: string;
  /** Stops the gateway and removes its directory. */
  close(): Promise<void>;
}

export function startTestGateway(
  yaml: string,
  opts: {
    clock?: Clock;
    env?: Record<string, string>;
    db?: string;
    /** Test mode: the clock frozen at this epoch ms, moved through the control API's /clock. */
    testClockStart?: number;
    /** Hears the gateway's log lines (after its log level); silent by default. */
    log?: Log;
    /** Upstream requests through this fetch instead of the HTTP/1.1 client. */
    fetch?: typeof fetch;
  } = {},
) {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-test-"));
  const configPath = join(dir, "gateway.yaml");
  writeFileSync(configPath, yaml);
  const gw = startGateway({
    configPath,
    db: opts.db ?? ":memory:",
    listen: "127.0.0.1:0",
    admin: "127.0.0.1:0",
    env: opts.env ?? {},
    clock: opts.clock,
    ...(opts.testClockStart !== undefined ? { testMode: { clockStart: opts.testClockStart } } : {}),
    log: opts.log ?? silentLog,
    ...(opts.fetch ? { fetch: opts.fetch } : {}),
  });
  const close = async () => {
    await gw.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  return { ...gw, dir, configPath, close } satisfies TestGateway;
}

/** A config with one upstream at `upstreamUrl` and two tenants on different plans. */
export function basicConfig(upstreamUrl: string, extra = ""): string {
  return `version: 1
upstreams:
  up: { url: "${upstreamUrl}", timeout: 500ms, idleTimeout: 500ms, headers: { authorization: "Bearer upstream-secret" } }
  echo: { mock: echo }
plans:
  basic:
    rules:
      - allow: "* /v1/**"
      - deny: "* /v1/admin/**"
  readonly:
    rules:
      - allow: "GET /v1/**"
routes:
  - match: "* /v1/**"
    upstream: up
  - match: "* /echo/**"
    upstream: echo
tenants:
  acme:
    plan: basic
    rules: [{ allow: "* /echo/**" }]
    keys: [{ id: acme-key, secret: acme-secret-0001 }]
  globex:
    plan: readonly
    keys: [{ id: globex-key, secret: globex-secret-0001 }]
${extra}`;
}
