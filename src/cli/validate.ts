/** `gatehouse validate`: every problem in the config, located, in file order. */
import { ConfigError } from "../config/errors.ts";
import { loadConfigFile } from "../config/load.ts";
import type { Args, CommandSpec } from "./args.ts";
import { configArg, configFile, configFlag } from "./command.ts";
import { ExitCode } from "./errors.ts";
import { environmentOverrides } from "./overrides.ts";

const flags = { config: configFlag } as const;

export const spec: CommandSpec<typeof flags> = {
  name: "validate",
  usage: "[FILE]",
  description:
    "Checks a config file as serve would, without touching a database: YAML syntax, ${VAR}\n" +
    "interpolation, every key and value, names that refer to nothing, routes that can never match,\n" +
    "unsafe listeners. Prints every problem at once as file:line:col path: message (with a hint\n" +
    "where one helps), in file order, and checks the GATEHOUSE_* variables' values too.",
  args: configArg,
  flags,
  notes: ["exit codes: 0 valid, 1 problems found, 2 usage error"],
};

export async function run(args: Args<typeof flags>): Promise<number> {
  const file = configFile("validate", args.flags.config, args.positionals);
  const { problems } = environmentOverrides(process.env);
  let summary: string | undefined;
  let issues = "";
  try {
    const { config } = loadConfigFile(file);
    summary = `${file}: ok (${count(Object.keys(config.tenants ?? {}).length, "tenant")}, ${count(config.routes.length, "route")})`;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    issues = `${err.message}\n`;
  }
  process.stderr.write(issues + problems.map((p) => `${p}\n`).join(""));
  if (issues || problems.length) return ExitCode.failed;
  process.stdout.write(`${summary}\n`);
  return ExitCode.ok;
}

const count = (n: number, noun: string) => `${n} ${noun}${n === 1 ? "" : "s"}`;
