/**
 * Cluster nodes in this process: real gateways (startGatewayUnlocked, both listeners on free ports,
 * a database file each) on a ManualClock and a ManualScheduler, so a test decides when a node runs
 * its once-a-second version check (`tick`) and can tell it apart from a notification.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type RunningGateway, startGatewayUnlocked } from "../../src/app.ts";
import { ManualClock } from "../../src/lib/clock.ts";
import type { LogLevel } from "../../src/lib/log.ts";
import { ManualScheduler } from "../../src/lib/scheduler.ts";

export const TOKEN = "k7Qm2xVb9LpR4tZw8NcY3hJd";
export const MASTER_KEY = Buffer.alloc(32, 7).toString("base64");

/** A config with an echo upstream and one plan (more with `extra`), in cluster mode on `url`. */
export function clusterYaml(url: string, extra = ""): string {
  return `version: 1
server: { adminToken: ${TOKEN} }
cluster: { postgres: "${url}" }
upstreams: { echo: { mock: echo } }
plans:
  free: { rules: [{ allow: "* /v1/**" }] }
${extra}
routes: [{ match: "* /v1/**", upstream: echo }]
tenants:
  acme:
    plan: free
    keys: [{ id: acme-dev, secret: gh_cluster_acme_0001 }]
`;
}

export interface Line {
  level: LogLevel;
  msg: string;
  fields?: Record<string, unknown>;
}

export interface TestNode extends RunningGateway {
  readonly dir: string;
  readonly configPath: string;
  readonly lines: Line[];
  /** A control-API call with the token; resolves to the status and the parsed body. */
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON answers
  call(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }>;
  /** One data-plane request with `key`; resolves to the status. */
  data(key: string, path?: string): Promise<number>;
  /** One second passes on the node's scheduler: its version check and heartbeat run. */
  tick(): void;
  writeConfig(yaml: string): void;
  close(): Promise<void>;
}

export async function startNode(
  yaml: string,
  o: { db?: string; env?: Record<string, string>; dir?: string } = {},
): Promise<TestNode> {
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), "gatehouse-node-"));
  const configPath = join(dir, "gateway.yaml");
  writeFileSync(configPath, yaml);
  const clock = new ManualClock(Date.UTC(2026, 0, 1));
  const scheduler = new ManualScheduler(() => clock.now());
  const lines: Line[] = [];
  const gw = await startGatewayUnlocked({
    configPath,
    db: o.db ?? join(dir, "gatehouse.db"),
    listen: "127.0.0.1:0",
    admin: "127.0.0.1:0",
    env: { GATEHOUSE_MASTER_KEY: MASTER_KEY, ...o.env },
    clock,
    scheduler,
    watchConfig: false,
    log: (level, msg, fields) => lines.push({ level, msg, ...(fields ? { fields } : {}) }),
  });
  return {
    ...gw,
    dir,
    configPath,
    lines,
    async call(method, path, body) {
      const res = await fetch(`${gw.adminUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await res.text();
      return { status: res.status, json: text ? JSON.parse(text) : undefined };
    },
    async data(key, path = "/v1/items") {
      const res = await fetch(`${gw.dataUrl}${path}`, { headers: { "x-api-key": key } });
      await res.arrayBuffer();
      return res.status;
    },
    tick() {
      clock.advance(1000);
      scheduler.runDue();
    },
    writeConfig: (text) => writeFileSync(configPath, text),
    async close() {
      await gw.stop();
      if (!o.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Polls `check` until it holds; a real process or another node needs real time to answer. */
export async function eventually(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000) {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await Bun.sleep(20);
  }
}
