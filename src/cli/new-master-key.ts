/** `gatehouse new-master-key`: a fresh master key for the credential vault, on stdout. */
import { newMasterKeyText } from "../vault/crypto.ts";
import type { Args, CommandSpec } from "./args.ts";

export const spec: CommandSpec<Record<string, never>> = {
  name: "new-master-key",
  usage: "",
  description:
    "Prints a new master key for the credential vault: base64 of 32 random bytes. Keep it out of\n" +
    "shell history and the config: gatehouse new-master-key > master.key, then give gatehouse\n" +
    "GATEHOUSE_MASTER_KEY_FILE=master.key (or the key itself in GATEHOUSE_MASTER_KEY).",
  args: { name: "", help: "", min: 0, max: 0 },
  flags: {},
};

export async function run(_args: Args<Record<string, never>>): Promise<number> {
  process.stdout.write(`${newMasterKeyText()}\n`);
  return 0;
}
