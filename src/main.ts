#!/usr/bin/env bun
/**
 * gatehouse command line. Each command lives in src/cli/<command>.ts with its flags and help; this
 * only picks one and loads it, so a command costs the start-up of its own code alone.
 */
import pkg from "../package.json" with { type: "json" };
import { helpText, parseArgs } from "./cli/args.ts";
import type { Command } from "./cli/command.ts";
import { describeFailure, ExitCode, exitCodeHelp, usageError } from "./cli/errors.ts";
import { environmentHelp } from "./cli/overrides.ts";
import { closest } from "./lib/closest.ts";

const commands: Record<string, { summary: string; load: () => Promise<Command> }> = {
  serve: {
    summary: "serve the gateway: the proxy and the control API",
    load: () => import("./cli/serve.ts"),
  },
  validate: {
    summary: "check a config file and report every problem",
    load: () => import("./cli/validate.ts"),
  },
  diff: {
    summary: "show what a reload of the config would change in its database",
    load: () => import("./cli/diff.ts"),
  },
  init: { summary: "write a commented starter config", load: () => import("./cli/init.ts") },
  test: { summary: "run scenario files against test-mode gateways", load: () => import("./cli/test.ts") },
  export: {
    summary: "print the tenants and keys made through the control API as YAML",
    load: () => import("./cli/export.ts"),
  },
  "new-master-key": {
    summary: "print a new master key for the credential vault",
    load: () => import("./cli/new-master-key.ts"),
  },
  "rotate-master-key": {
    summary: "re-encrypt every stored credential under a new master key",
    load: () => import("./cli/rotate-master-key.ts"),
  },
  "hash-key": {
    summary: "print the sha256: form of a key for gateway.yaml",
    load: () => import("./cli/hash-key.ts"),
  },
  version: { summary: "print the version (also --version)", load: () => import("./cli/version.ts") },
};

const NAME_WIDTH = Math.max(...Object.keys(commands).map((name) => name.length)) + 2;

const overview = `gatehouse ${pkg.version}: an API gateway for multi-tenant SaaS APIs

usage: gatehouse COMMAND [ARGUMENTS] [OPTIONS]
       gatehouse COMMAND --help     that command's arguments and options

commands:
${Object.entries(commands)
  .map(([name, c]) => `  ${name.padEnd(NAME_WIDTH)}${c.summary}`)
  .join("\n")}

${environmentHelp}

${exitCodeHelp}
`;

async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined) {
    // Serving is asked for by name (`npm start` does): a bare call gets help, not a gateway.
    process.stderr.write(overview);
    return ExitCode.usage;
  }
  if (first === "--help" || first === "-h" || (first === "help" && rest.length === 0)) {
    process.stdout.write(overview);
    return ExitCode.ok;
  }
  if (first === "help") return main([...rest, "--help"]);
  if (first === "--version") return main(["version", ...rest]);
  const entry = commands[first];
  if (!entry) {
    if (first.startsWith("-"))
      throw usageError("", `give a command before ${first}, e.g. gatehouse serve ${first}`);
    const guess = closest(first, Object.keys(commands));
    throw usageError(
      "",
      `unknown command ${JSON.stringify(first)}${guess ? `; did you mean ${guess}?` : ""}`,
    );
  }
  const command = await entry.load();
  const args = parseArgs(command.spec, rest);
  if (args.help) {
    process.stdout.write(helpText(command.spec));
    return ExitCode.ok;
  }
  return command.run(args);
}

const command = Bun.argv[2] !== undefined && commands[Bun.argv[2]] ? Bun.argv[2] : "";
main(Bun.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    const { text, exitCode } = describeFailure(err, command);
    process.stderr.write(`${text}\n`);
    process.exit(exitCode);
  },
);
