/** What every command module exports: its declaration (flags, arguments, help) and how it runs. */
import type { Args, CommandSpec, Flag, Flags } from "./args.ts";
import { usageError } from "./errors.ts";

export interface Command<F extends Flags = Flags> {
  spec: CommandSpec<F>;
  /** Resolves with the exit code once the command is done. */
  run(args: Args<F>): Promise<number>;
}

export const configFlag = {
  type: "string",
  short: "c",
  value: "FILE",
  help: "the config file (default gateway.yaml); the same as giving FILE",
} as const satisfies Flag;

export const configArg = { name: "[FILE]", help: "the config file (default gateway.yaml)", min: 0, max: 1 };

/** The config file, given as FILE or as --config FILE (not both); gateway.yaml by default. */
export function configFile(command: string, flag: string | undefined, positionals: string[]): string {
  const [positional] = positionals;
  if (flag !== undefined && positional !== undefined && flag !== positional) {
    throw usageError(
      command,
      `the config file is given twice (${positional} and --config ${flag}); give one`,
    );
  }
  return flag ?? positional ?? "gateway.yaml";
}
