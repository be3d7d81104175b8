/**
 * A gateway with a vault: started the way `serve` starts it (stored credentials decrypted first),
 * from inline YAML in a temp directory, with its log lines and every control-API answer kept so
 * tests can search them for a credential's value.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type RunningGateway, startGatewayUnlocked } from "../../src/app.ts";
import type { Log } from "../../src/lib/log.ts";

export const TOKEN = "k7Qm2xVb9LpR4tZw8NcY3hJd";
/** Fixed keys (base64 of 32 bytes), so failures reproduce. */
export const KEY_A = Buffer.alloc(32, 0xa1).toString("base64");
export const KEY_B = Buffer.alloc(32, 0xb2).toString("base64");

export interface VaultGateway extends RunningGateway {
  readonly dir: string;
  readonly configPath: string;
  readonly logs: string[];
  /** Every control-API answer so far, as text. */
  readonly answers: string[];
  admin(
    method: string,
    path: string,
    body?: unknown,
    // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON answers
  ): Promise<{ status: number; text: string; json: any }>;
  data(path: string, secret: string): Promise<{ status: number; text: string }>;
  writeConfig(yaml: string): void;
  close(): Promise<void>;
}

export async function startVaultGateway(
  yaml: string,
  o: {
    env?: Record<string, string>;
    dir?: string;
    db?: string;
    /** Test mode: every write on this thread, so the database file is quiet once close() resolves. */
    testMode?: boolean;
  } = {},
): Promise<VaultGateway> {
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), "gatehouse-vault-"));
  const configPath = join(dir, "gateway.yaml");
  writeFileSync(configPath, yaml);
  const logs: string[] = [];
  const log: Log = (level, msg, fields) => logs.push(JSON.stringify({ level, msg, ...fields }));
  const gw = await startGatewayUnlocked({
    configPath,
    db: o.db ?? ":memory:",
    listen: "127.0.0.1:0",
    admin: "127.0.0.1:0",
    env: o.env ?? {},
    watchConfig: false,
    ...(o.testMode ? { testMode: { clockStart: Date.parse("2026-03-01T00:00:00Z") } } : {}),
    log,
  });
  const answers: string[] = [];
  return {
    ...gw,
    dir,
    configPath,
    logs,
    answers,
    async admin(method, path, body) {
      const res = await fetch(gw.adminUrl + path, {
        method,
        headers: {
          authorization: `Bearer ${TOKEN}`,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
      });
      const text = await res.text();
      answers.push(`${[...res.headers].join(";")}\n${text}`);
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {}
      return { status: res.status, text, json };
    },
    async data(path, secret) {
      const res = await fetch(gw.dataUrl + path, { headers: { authorization: `Bearer ${secret}` } });
      const text = await res.text();
      answers.push(`${[...res.headers].join(";")}\n${text}`);
      return { status: res.status, text };
    },
    writeConfig(text) {
      writeFileSync(configPath, text);
    },
    async close() {
      await gw.stop();
      if (!o.dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A config with one real upstream whose authorization header is `header` (YAML flow text). */
export function vaultConfig(upstreamUrl: string, o: { header?: string; tenants?: string } = {}): string {
  return `version: 1
server: { adminToken: ${TOKEN} }
upstreams:
  petstore:
    url: "${upstreamUrl}"
    headers: { x-static: plain${o.header ? `, authorization: ${o.header}` : ""} }
plans:
  open: { rules: [{ allow: "* /**" }] }
routes:
  - { match: "* /**", upstream: petstore }
tenants:
  acme:
    plan: open
    keys: [{ id: acme-key, secret: acme-secret-0001 }]
  globex:
    plan: open
    keys: [{ id: globex-key, secret: globex-secret-0001 }]
${o.tenants ?? ""}`;
}
