#!/usr/bin/env bun
/** gatehouse command line: serve, validate, export, hash-key, version. */
import { parseArgs } from "node:util";
import pkg from "../package.json" with { type: "json" };
import { StartupError, startGateway } from "./app.ts";
import { ConfigError } from "./config/errors.ts";
import { loadConfigFile } from "./config/load.ts";
import { SnapshotError } from "./gateway/build-snapshot.ts";
import { parseInstant } from "./lib/instant.ts";
import { hashKey } from "./lib/key-hash.ts";
import { jsonLog } from "./lib/log.ts";

const usage = `gatehouse ${pkg.version}: an API gateway for multi-tenant SaaS APIs

usage:
  gatehouse serve    [--config gateway.yaml] [--db PATH|:memory:] [--listen HOST:PORT] [--admin HOST:PORT]
                     [--test-mode [--clock-start ISO]]   a frozen clock moved by POST /clock; loopback only
  gatehouse validate [--config gateway.yaml]
  gatehouse test     FILE... [--junit FILE] [--seed N] [--target URL --admin URL [--admin-token T]]
                     run scenario files, each on a fresh test-mode gateway (or against --target)
  gatehouse export   [--config gateway.yaml] [--db PATH]   print API-made tenants and keys as gateway.yaml (hashes only)
  gatehouse hash-key [SECRET]     print the sha256:<hex> form of a key for gateway.yaml (reads stdin without SECRET)
  gatehouse version
`;

const options = {
  config: { type: "string", short: "c", default: "gateway.yaml" },
  db: { type: "string" },
  listen: { type: "string" },
  admin: { type: "string" },
  "test-mode": { type: "boolean" },
  "clock-start": { type: "string" },
  junit: { type: "string" },
  seed: { type: "string" },
  target: { type: "string" },
  "admin-token": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

function fail(message: string, code = 1): never {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

async function main(argv: string[]): Promise<void> {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof options; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    fail(`gatehouse: ${(err as Error).message}\n\n${usage}`, 2);
  }
  const { values, positionals } = parsed;
  const [command = "serve", ...rest] = positionals;
  if (values.help || command === "help") {
    process.stdout.write(usage);
    return;
  }
  switch (command) {
    case "version":
      process.stdout.write(`gatehouse ${pkg.version} (bun ${Bun.version})\n`);
      return;
    case "validate":
      try {
        const loaded = loadConfigFile(values.config);
        const t = Object.keys(loaded.config.tenants ?? {}).length;
        process.stdout.write(`${values.config}: ok (${t} tenants, ${loaded.config.routes.length} routes)\n`);
      } catch (err) {
        if (err instanceof ConfigError) fail(err.message);
        throw err;
      }
      return;
    case "hash-key": {
      const secret = rest[0] ?? (await Bun.stdin.text()).trim();
      if (!secret) fail("gatehouse hash-key: give the secret as an argument or on stdin", 2);
      process.stdout.write(`${hashKey(secret)}\n`);
      return;
    }
    case "export":
      try {
        // Loaded only for this command: it reuses the control API's modules, which serve never loads
        // before its first control-API request.
        const { runExport } = await import("./cli/export.ts");
        process.stdout.write(runExport(values.config, values.db));
      } catch (err) {
        if (err instanceof ConfigError) fail(err.message);
        fail(`gatehouse export: ${(err as Error).message}`);
      }
      return;
    case "test":
      return test(rest, values);
    case "serve":
      return serve(values);
    default:
      fail(`gatehouse: unknown command "${command}"\n\n${usage}`, 2);
  }
}

async function test(
  files: string[],
  values: { junit?: string; seed?: string; target?: string; admin?: string; "admin-token"?: string },
): Promise<void> {
  if (files.length === 0) fail("gatehouse test: give at least one scenario file", 2);
  if ((values.target === undefined) !== (values.admin === undefined)) {
    fail("gatehouse test: --target and --admin go together: the data plane's URL and the control API's", 2);
  }
  const seed = values.seed === undefined ? undefined : Number(values.seed);
  if (seed !== undefined && !(Number.isInteger(seed) && seed >= 0 && seed < 2 ** 32)) {
    fail(`gatehouse test: --seed "${values.seed}" is not a whole number from 0 to 4294967295`, 2);
  }
  // Loaded only for this command, like export.
  const { runTestCommand } = await import("./cli/test.ts");
  const { report, ok } = await runTestCommand({
    files,
    junit: values.junit,
    seed,
    target: values.target,
    admin: values.admin,
    adminToken: values["admin-token"],
  });
  process.stdout.write(report);
  process.exit(ok ? 0 : 1);
}

interface ServeFlags {
  config: string;
  db?: string;
  listen?: string;
  admin?: string;
  "test-mode"?: boolean;
  "clock-start"?: string;
}

function serve(values: ServeFlags): void {
  if (values["clock-start"] !== undefined && !values["test-mode"]) {
    fail("gatehouse serve: --clock-start needs --test-mode", 2);
  }
  const clockStart = values["clock-start"] === undefined ? undefined : parseInstant(values["clock-start"]);
  if (clockStart === null) {
    fail(
      `gatehouse serve: --clock-start "${values["clock-start"]}" is not an RFC 3339 time; write e.g. 2027-01-31T23:59:00Z`,
      2,
    );
  }
  let gateway: ReturnType<typeof startGateway>;
  try {
    gateway = startGateway({
      configPath: values.config,
      db: values.db,
      listen: values.listen,
      admin: values.admin,
      ...(values["test-mode"] ? { testMode: { clockStart } } : {}),
    });
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message);
    if (err instanceof StartupError || err instanceof SnapshotError) fail(`gatehouse: ${err.message}`);
    throw err;
  }
  const shutdown = (signal: string) => {
    jsonLog("info", "draining", { signal });
    gateway.stop().then(
      () => {
        jsonLog("info", "stopped", { signal });
        process.exit(0);
      },
      (err) => fail(`gatehouse: shutdown failed: ${err}`),
    );
  };
  process.once("SIGTERM", () => shutdown("SIGTERM"));
  process.once("SIGINT", () => shutdown("SIGINT"));
  // Only now: whoever waits for this line may signal us at once.
  jsonLog("info", "gatehouse listening", {
    proxy: gateway.dataUrl,
    admin: gateway.adminUrl,
    version: pkg.version,
    ...(gateway.testClock ? { testMode: true, clock: new Date(gateway.testClock.now()).toISOString() } : {}),
  });
}

main(Bun.argv.slice(2)).catch((err) => {
  fail(`gatehouse: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
});
