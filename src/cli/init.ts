/**
 * `gatehouse init [FILE]`: a commented starter config, and gateway.schema.json beside it (the schema
 * of the gatehouse that wrote it, which the config's `$schema` line points at). Never overwrites a
 * file that differs from what it would write, unless told to.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { GatewayConfig } from "../config/schema.ts";
import { schemaJson } from "../config/schema-json.ts";
import { generateApiKey } from "../lib/api-key-format.ts";
import { hashKey } from "../lib/key-hash.ts";
import type { Args, CommandSpec } from "./args.ts";
import { CliError, ExitCode } from "./errors.ts";
import { SCHEMA_FILE, starterConfig } from "./starter-config.ts";

const flags = {
  force: { type: "boolean", help: "overwrite FILE and the schema beside it if they exist" },
} as const;

export const spec: CommandSpec<typeof flags> = {
  name: "init",
  usage: "[FILE] [--force]",
  description:
    `Writes a commented starter config to FILE and ${SCHEMA_FILE} beside it, for editors. The\n` +
    "config serves at once (a built-in echo upstream, one plan, one route, one tenant) and declares one\n" +
    "key by its hash; its secret is printed once. Refuses to overwrite an existing file.",
  args: { name: "[FILE]", help: "where to write the config (default gateway.yaml)", min: 0, max: 1 },
  flags,
  notes: ["exit codes: 0 written, 2 usage error or a file is in the way"],
};

export async function run(args: Args<typeof flags>): Promise<number> {
  const file = args.positionals[0] ?? "gateway.yaml";
  const schemaFile = join(dirname(file), SCHEMA_FILE);
  const secret = generateApiKey();
  const writes: [string, string][] = [
    [file, starterConfig(hashKey(secret))],
    [schemaFile, schemaJson(GatewayConfig)],
  ];
  // A schema identical to ours is no loss; anything else in the way is refused before writing either.
  const pending = writes.filter(([path, text]) => !(existsSync(path) && readFileSync(path, "utf8") === text));
  const inTheWay = pending.filter(([path]) => existsSync(path)).map(([path]) => path);
  if (inTheWay.length && !args.flags.force) {
    throw new CliError(
      `gatehouse init: ${inTheWay.join(" and ")} already ${inTheWay.length > 1 ? "exist" : "exists"}; ` +
        "choose another FILE, or pass --force to overwrite",
      ExitCode.usage,
    );
  }
  for (const [path, text] of pending) {
    try {
      writeFileSync(path, text);
    } catch (err) {
      throw new CliError(
        `gatehouse init: cannot write ${path} (${(err as NodeJS.ErrnoException).code ?? err}); ` +
          "check that its directory exists and is writable",
        ExitCode.unavailable,
      );
    }
  }
  process.stdout.write(
    `wrote ${pending.map(([path]) => path).join(" and ")}\n` +
      `The key example-dev of tenant example has this secret, shown only now:\n  ${secret}\n` +
      `Next: gatehouse validate ${file} && gatehouse serve ${file}\n` +
      `      curl -s localhost:8080/v1/hello -H 'X-API-Key: ${secret}'\n`,
  );
  return ExitCode.ok;
}
