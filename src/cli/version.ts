/** `gatehouse version` (and `gatehouse --version`). */
import pkg from "../../package.json" with { type: "json" };
import type { CommandSpec } from "./args.ts";

export const spec: CommandSpec<Record<string, never>> = {
  name: "version",
  usage: "",
  description: "Prints gatehouse's version and the version of Bun it runs on.",
  args: null,
  flags: {},
};

export async function run(): Promise<number> {
  process.stdout.write(`gatehouse ${pkg.version} (bun ${Bun.version})\n`);
  return 0;
}
