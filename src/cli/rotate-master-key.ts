/**
 * `gatehouse rotate-master-key`: re-encrypts every stored credential under a new master key, read
 * from a file (or stdin), never from the command line, in one transaction that reads each one back
 * before it commits.
 */
import { existsSync } from "node:fs";
import type { Args, CommandSpec } from "./args.ts";
import { configArg, configFile, configFlag } from "./command.ts";
import { CliError, ExitCode, exitCodeHelp, usageError } from "./errors.ts";

const flags = {
  config: configFlag,
  db: { type: "string", value: "PATH", help: "the database (default: the config's database:)" },
  "new-key-file": {
    type: "string",
    value: "FILE",
    help: "the new master key, as gatehouse new-master-key prints it; - reads it from stdin",
  },
} as const;

export const spec: CommandSpec<typeof flags> = {
  name: "rotate-master-key",
  usage: "[FILE] --new-key-file FILE|- [--db PATH]",
  description:
    "Re-encrypts every stored credential under a new master key. The current key comes from where\n" +
    "serve reads it (GATEHOUSE_MASTER_KEY, GATEHOUSE_MASTER_KEY_FILE or vault.masterKeyFile). Nothing\n" +
    "changes unless every credential decrypts and reads back under the new key. Restart gatehouse\n" +
    "with the new key afterwards: the old one no longer opens them.",
  args: configArg,
  flags,
  notes: [exitCodeHelp],
};

export async function run(args: Args<typeof flags>): Promise<number> {
  const { flags: f } = args;
  const configPath = configFile("rotate-master-key", f.config, args.positionals);
  const newKeyFile = f["new-key-file"];
  if (!newKeyFile) {
    throw usageError(
      "rotate-master-key",
      "give the new key with --new-key-file FILE (or - for stdin); make one with gatehouse new-master-key > FILE",
    );
  }
  const { loadConfigFile } = await import("../config/load.ts");
  const { openDb } = await import("../db/open.ts");
  const { systemClock } = await import("../lib/clock.ts");
  const { findMasterKey, KEY_VAR, readKeyFile } = await import("../vault/master-key.ts");
  const { RotationError, rotateMasterKey } = await import("../vault/rotate.ts");

  const { config } = loadConfigFile(configPath, process.env);
  if (config.cluster?.postgres) {
    // Each node's database only holds a copy; re-encrypting one copy would split the cluster's keys.
    throw new CliError(
      "gatehouse rotate-master-key: in cluster mode the credentials live in PostgreSQL, and rotating " +
        "them there is not supported yet; the master key stays as it is",
      ExitCode.config,
    );
  }
  const path = f.db ?? config.database ?? "./gatehouse.db";
  if (path === ":memory:") {
    throw new CliError(
      "gatehouse rotate-master-key: an in-memory database holds no credentials; pass --db PATH",
      ExitCode.usage,
    );
  }
  if (!existsSync(path)) {
    throw new CliError(
      `gatehouse rotate-master-key: no database at ${path}; pass --db PATH`,
      ExitCode.unavailable,
    );
  }
  const oldKey = findMasterKey(process.env, config);
  const newKey = readKeyFile(newKeyFile, newKeyFile === "-" ? "stdin" : newKeyFile);
  const database = openDb(path);
  try {
    const r = await rotateMasterKey(database, oldKey, newKey, systemClock).catch((err: unknown) => {
      // A refusal that changed nothing: the check said no.
      if (err instanceof RotationError)
        throw new CliError(`gatehouse rotate-master-key: ${err.message}`, ExitCode.failed);
      throw err;
    });
    const what =
      r.credentials === 0
        ? "no credentials are stored; nothing to re-encrypt"
        : `re-encrypted ${r.credentials} credential${r.credentials === 1 ? "" : "s"}`;
    process.stdout.write(
      `${what} (key id ${r.oldKeyId ?? "none"} → ${r.newKeyId}).\n` +
        `Start gatehouse with the new key (${KEY_VAR}, or its file); the old key no longer opens them. ` +
        "A gatehouse still running with the old key refuses credential changes until restarted.\n",
    );
    return ExitCode.ok;
  } finally {
    database.close();
  }
}
