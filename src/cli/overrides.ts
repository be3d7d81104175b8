/**
 * Settings given outside the config file. Precedence: command-line flags, then the environment
 * (GATEHOUSE_LISTEN, GATEHOUSE_ADMIN, GATEHOUSE_DB, GATEHOUSE_ADMIN_TOKEN), then the file, then the
 * defaults. An empty variable counts as unset, as in `${VAR:-default}`. Each value is checked as the
 * file's would be, and a bad one is reported under the name it was given by.
 */
import { weakTokenReason } from "../admin/auth.ts";
import { HostPort } from "../config/schema.ts";
import { CliError, ExitCode, usageError } from "./errors.ts";

/** A value and where it came from: `--listen` or `GATEHOUSE_LISTEN`. */
export interface Setting {
  value: string;
  from: string;
}

export interface Overrides {
  listen?: Setting;
  admin?: Setting;
  db?: Setting;
  adminToken?: Setting;
}

type Name = keyof Overrides;

export const environmentVariables: Record<Name, string> = {
  listen: "GATEHOUSE_LISTEN",
  admin: "GATEHOUSE_ADMIN",
  db: "GATEHOUSE_DB",
  adminToken: "GATEHOUSE_ADMIN_TOKEN",
};

export const environmentHelp = `environment (overrides the config file; command-line flags override these):
  GATEHOUSE_LISTEN           data plane address, HOST:PORT       (server.listen)
  GATEHOUSE_ADMIN            control API address, HOST:PORT      (server.admin)
  GATEHOUSE_DB               SQLite database file, or :memory:   (database)
  GATEHOUSE_ADMIN_TOKEN      control API bearer token            (server.adminToken)
  GATEHOUSE_LOG_LEVEL        error, warn, info or debug          (log.level)
  GATEHOUSE_MASTER_KEY       the credential vault's master key   (vault.masterKeyFile)
  GATEHOUSE_MASTER_KEY_FILE  a file holding that key             (vault.masterKeyFile)`;

const hostPort = new RegExp(HostPort.pattern as string);

/** What is wrong with a value, or undefined. Never quotes a token. */
function problemWith(name: Name, value: string): string | undefined {
  if (name === "listen" || name === "admin") {
    if (!hostPort.test(value)) return `${JSON.stringify(value)} is not HOST:PORT; write e.g. 127.0.0.1:8080`;
    if (Number(value.slice(value.lastIndexOf(":") + 1)) > 65535) {
      return `${JSON.stringify(value)}: the port must be at most 65535`;
    }
  }
  if (name === "adminToken") {
    const weak = weakTokenReason(value);
    if (weak) return `${weak}; set it to a long random value`;
  }
  return undefined;
}

const allNames = Object.keys(environmentVariables) as Name[];

/** The environment's overrides of `names`, and one line per variable whose value is refused. */
export function environmentOverrides(
  env: Record<string, string | undefined>,
  names: readonly Name[] = allNames,
): { overrides: Overrides; problems: string[] } {
  const overrides: Overrides = {};
  const problems: string[] = [];
  for (const name of names) {
    const variable = environmentVariables[name];
    const value = env[variable];
    if (!value) continue;
    const problem = problemWith(name, value);
    if (problem) problems.push(`${variable}: ${problem}`);
    else overrides[name] = { value, from: variable };
  }
  return { overrides, problems };
}

/**
 * Flags over the environment, for the settings `names` the command uses. A refused flag is a usage
 * error (exit 2); a refused variable is a configuration error (exit 3).
 */
export function resolveOverrides(
  command: string,
  flags: Partial<Record<Name, string>>,
  env: Record<string, string | undefined>,
  names: readonly Name[] = allNames,
): Overrides {
  const { overrides, problems } = environmentOverrides(env, names);
  for (const [name, value] of Object.entries(flags) as [Name, string | undefined][]) {
    if (value === undefined) continue;
    const flag = `--${name === "adminToken" ? "admin-token" : name}`;
    if (value === "") throw usageError(command, `${flag} needs a value`);
    const problem = problemWith(name, value);
    if (problem) throw usageError(command, `${flag} ${problem}`);
    overrides[name] = { value, from: flag };
    // A flag replaces the variable, so a bad variable it replaces does not matter.
    const replaced = problems.findIndex((p) => p.startsWith(`${environmentVariables[name]}:`));
    if (replaced >= 0) problems.splice(replaced, 1);
  }
  if (problems.length) {
    throw new CliError(problems.map((p) => `gatehouse ${command}: ${p}`).join("\n"), ExitCode.config);
  }
  return overrides;
}
