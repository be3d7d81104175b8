/**
 * Exit codes, and the one place that turns an error into the line (or, for config errors, the located
 * lines) a command prints. Nothing a command fails with reaches the user as a stack trace.
 */
import { ConfigError } from "../config/errors.ts";
import { DatabaseOpenError } from "../db/open-error.ts";
import { StartupError } from "../lib/startup-error.ts";
import { MasterKeyError } from "../vault/master-key.ts";

export const ExitCode = {
  /** Done: served and stopped, valid, every scenario passed, nothing to change. */
  ok: 0,
  /** The command's check said no: validate found problems, a scenario failed, diff found changes. */
  failed: 1,
  /** The command line is wrong: unknown command or flag, missing or extra argument, malformed value. */
  usage: 2,
  /** The configuration is refused: file missing or invalid, a sync the database refuses, a bad GATEHOUSE_* value. */
  config: 3,
  /** The machine refuses: an address in use or not available, a database that cannot be opened. */
  unavailable: 4,
  /** A bug in gatehouse. */
  internal: 5,
} as const;

export const exitCodeHelp = `exit codes:
  0  success: served and stopped cleanly, config valid, all scenarios passed, no changes
  1  the check said no: validate found problems, a scenario failed, diff found changes
  2  usage error: unknown command or flag, missing or extra argument, malformed value
  3  configuration refused: config file missing or invalid, a sync the database refuses,
     an invalid GATEHOUSE_* variable, an unsafe admin listener or token
  4  cannot start: address in use or not available, database cannot be opened
  5  internal error: a bug in gatehouse; please report it`;

/** A failure the command already put in words. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/** `gatehouse serve: --listen "x": ...; see gatehouse serve --help` */
export function usageError(command: string, message: string): CliError {
  const prefix = command ? `gatehouse ${command}` : "gatehouse";
  return new CliError(`${prefix}: ${message} (see ${prefix} --help)`, ExitCode.usage);
}

/** What to print and the exit code, for anything a command throws. */
export function describeFailure(err: unknown, command: string): { text: string; exitCode: number } {
  const prefix = command ? `gatehouse ${command}` : "gatehouse";
  if (err instanceof CliError) return { text: err.message, exitCode: err.exitCode };
  // Located, one issue per line (with its hint): the form every config error has.
  if (err instanceof ConfigError) return { text: err.message, exitCode: ExitCode.config };
  if (err instanceof StartupError) {
    return {
      text: `${prefix}: ${err.message}`,
      exitCode: err.reason === "unavailable" ? ExitCode.unavailable : ExitCode.config,
    };
  }
  // A missing or wrong master key is a configuration the machine's secrets do not match.
  if (err instanceof MasterKeyError) return { text: `${prefix}: ${err.message}`, exitCode: ExitCode.config };
  if (err instanceof DatabaseOpenError)
    return { text: `${prefix}: ${err.message}`, exitCode: ExitCode.unavailable };
  return {
    text: `${prefix}: internal error: ${oneLine(err)}; please report it`,
    exitCode: ExitCode.internal,
  };
}

/** The message and where it was thrown, on one line. */
function oneLine(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const frame = err.stack
    ?.split("\n")
    .find((l) => l.trimStart().startsWith("at "))
    ?.trim();
  return `${err.message.split("\n")[0]}${frame ? ` (${frame})` : ""}`;
}
