/** `gatehouse hash-key`: the sha256:<hex> form of a key, for `hash:` in a committed gateway.yaml. */
import { hashKey } from "../lib/key-hash.ts";
import type { Args, CommandSpec } from "./args.ts";
import { usageError } from "./errors.ts";

export const spec: CommandSpec<Record<string, never>> = {
  name: "hash-key",
  usage: "[SECRET]",
  description:
    "Prints the sha256:<hex> form of a key, to declare it in gateway.yaml as hash: without its\n" +
    "plaintext. Reads the secret from stdin when it is not given (keeps it out of shell history).",
  args: { name: "[SECRET]", help: "the key's secret (default: read from stdin)", min: 0, max: 1 },
  flags: {},
};

export async function run(args: Args<Record<string, never>>): Promise<number> {
  const secret = args.positionals[0] ?? (await Bun.stdin.text()).trim();
  if (!secret) throw usageError("hash-key", "give the secret as an argument or on stdin");
  process.stdout.write(`${hashKey(secret)}\n`);
  return 0;
}
