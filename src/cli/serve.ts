/** `gatehouse serve`: the data plane and the control API, until SIGTERM or SIGINT. */
import pkg from "../../package.json" with { type: "json" };
import { DatabaseOpenError } from "../db/open-error.ts";
import { parseInstant } from "../lib/instant.ts";
import { jsonLog } from "../lib/log.ts";
import { StartupError } from "../lib/startup-error.ts";
import type { Args, CommandSpec } from "./args.ts";
import { configArg, configFile, configFlag } from "./command.ts";
import { CliError, ExitCode, exitCodeHelp, usageError } from "./errors.ts";
import { environmentHelp, resolveOverrides } from "./overrides.ts";

const flags = {
  config: configFlag,
  db: {
    type: "string",
    value: "PATH",
    help: "the SQLite database file, or :memory: for an ephemeral run (default: GATEHOUSE_DB, else database:)",
  },
  listen: {
    type: "string",
    value: "HOST:PORT",
    help: "where the data plane listens; port 0 picks a free one (default: GATEHOUSE_LISTEN, else server.listen)",
  },
  admin: {
    type: "string",
    value: "HOST:PORT",
    help: "where the control API listens (default: GATEHOUSE_ADMIN, else server.admin)",
  },
  "test-mode": {
    type: "boolean",
    help: "a frozen clock, moved by POST /clock; loopback listeners only",
  },
  "clock-start": {
    type: "string",
    value: "ISO",
    help: "where test mode's clock starts, e.g. 2030-01-31T23:59:00Z (default: now)",
  },
} as const;

export const spec: CommandSpec<typeof flags> = {
  name: "serve",
  usage: "[FILE] [--db PATH] [--listen HOST:PORT] [--admin HOST:PORT] [--test-mode [--clock-start ISO]]",
  description:
    "Serves the gateway: the data plane (the proxy) and the control API. The config is validated and\n" +
    "synced into the database first; nothing starts unless every step succeeds. The start-up log line\n" +
    "(JSON on stderr) names the addresses bound. SIGTERM or SIGINT stops accepting connections, lets\n" +
    "requests in flight finish (up to server.drainTimeout) and exits 0.",
  args: configArg,
  flags,
  notes: [environmentHelp, exitCodeHelp],
};

export async function run(args: Args<typeof flags>): Promise<number> {
  const { flags: f } = args;
  const configPath = configFile("serve", f.config, args.positionals);
  if (f["clock-start"] !== undefined && !f["test-mode"])
    throw usageError("serve", "--clock-start needs --test-mode");
  const clockStart = f["clock-start"] === undefined ? undefined : parseInstant(f["clock-start"]);
  if (clockStart === null) {
    throw usageError(
      "serve",
      `--clock-start ${JSON.stringify(f["clock-start"])} is not an RFC 3339 time; write e.g. 2027-01-31T23:59:00Z`,
    );
  }
  const overrides = resolveOverrides("serve", { listen: f.listen, admin: f.admin, db: f.db }, process.env);

  // Loaded only now: help and usage errors cost nothing of the gateway's start-up.
  const { startGatewayUnlocked } = await import("../app.ts");
  const { SnapshotError } = await import("../gateway/build-snapshot.ts");
  let gateway: Awaited<ReturnType<typeof startGatewayUnlocked>>;
  try {
    // Unlocked: the vault's stored credentials are decrypted (asynchronously, WebCrypto) first.
    gateway = await startGatewayUnlocked({
      configPath,
      db: overrides.db?.value,
      listen: overrides.listen?.value,
      admin: overrides.admin?.value,
      adminToken: overrides.adminToken?.value,
      ...(f["test-mode"] ? { testMode: { clockStart } } : {}),
    });
  } catch (err) {
    if (err instanceof SnapshotError) throw new StartupError(err.message);
    // The path alone may not say why this one: name what chose it.
    if (err instanceof DatabaseOpenError && overrides.db) {
      throw new CliError(
        `gatehouse serve: cannot open the database "${err.path}" (from ${overrides.db.from}): ${err.reason}`,
        ExitCode.unavailable,
      );
    }
    throw err;
  }

  const { promise: stopped, resolve } = Promise.withResolvers<number>();
  const shutdown = (signal: string) => {
    gateway.log("info", "draining", { signal });
    gateway.stop().then(
      () => {
        gateway.log("info", "stopped", { signal });
        resolve(0);
      },
      (err) => {
        process.stderr.write(`gatehouse serve: shutdown failed: ${err}\n`);
        resolve(ExitCode.internal);
      },
    );
  };
  process.once("SIGTERM", () => shutdown("SIGTERM"));
  process.once("SIGINT", () => shutdown("SIGINT"));
  // A data-plane thread failed (its log line says which and why): stop cleanly, exit non-zero.
  void gateway.fatal.then(() =>
    gateway.stop().then(
      () => resolve(ExitCode.internal),
      () => resolve(ExitCode.internal),
    ),
  );
  // Only now: whoever waits for this line may signal us at once. Written whatever the log level: it
  // tells supervisors and test harnesses the addresses actually bound.
  jsonLog("info", "gatehouse listening", {
    proxy: gateway.dataUrl,
    admin: gateway.adminUrl,
    ...(gateway.portalUrl ? { portal: gateway.portalUrl } : {}),
    version: pkg.version,
    ...gateway.summary,
    ...(gateway.testClock ? { testMode: true, clock: new Date(gateway.testClock.now()).toISOString() } : {}),
  });
  return stopped;
}
