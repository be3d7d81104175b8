/**
 * `gatehouse test FILE... [--junit FILE] [--seed N] [--target URL --admin URL]`: runs scenario files
 * and prints a report ending in `N passed, N failed`. Exit 0 only when every scenario passed.
 */
import { writeFileSync } from "node:fs";
import { ConfigError } from "../config/errors.ts";
import { loadScenarioFile } from "../scenario/load.ts";
import { junitReport, textReport } from "../scenario/report.ts";
import { type RunOptions, runScenario, type ScenarioResult } from "../scenario/run.ts";
import type { Args, CommandSpec } from "./args.ts";
import { ExitCode, usageError } from "./errors.ts";

const flags = {
  junit: { type: "string", value: "FILE", help: "also write a JUnit XML report to FILE" },
  seed: {
    type: "string",
    value: "N",
    help: "seed of the jitter between repeated requests, 0 to 4294967295 (default: random, printed)",
  },
  target: {
    type: "string",
    value: "URL",
    help: "run against a gatehouse already running: its data plane URL (needs --admin)",
  },
  admin: { type: "string", value: "URL", help: "with --target: the control API's URL" },
  "admin-token": {
    type: "string",
    value: "TOKEN",
    help: "with --target: the control API token (default: GATEHOUSE_ADMIN_TOKEN)",
  },
} as const;

export const spec: CommandSpec<typeof flags> = {
  name: "test",
  usage: "FILE... [--junit FILE] [--seed N] [--target URL --admin URL [--admin-token TOKEN]]",
  description:
    "Runs scenario files, each on a fresh test-mode gateway in this process (or against --target),\n" +
    "and prints a report ending in `N passed, N failed`.",
  args: {
    name: "FILE...",
    help: "scenario files (scenario.schema.json describes them)",
    min: 1,
    max: Infinity,
  },
  flags,
  notes: ["exit codes: 0 every scenario passed, 1 one failed, 2 usage error"],
};

export async function run(args: Args<typeof flags>): Promise<number> {
  const f = args.flags;
  if ((f.target === undefined) !== (f.admin === undefined)) {
    throw usageError("test", "--target and --admin go together: the data plane's URL and the control API's");
  }
  const seed = f.seed === undefined ? undefined : Number(f.seed);
  if (seed !== undefined && !(/^\d+$/.test(f.seed!) && seed < 2 ** 32)) {
    throw usageError("test", `--seed ${JSON.stringify(f.seed)} is not a whole number from 0 to 4294967295`);
  }
  const { report, ok } = await runTestCommand({
    files: args.positionals,
    junit: f.junit,
    seed,
    target: f.target,
    admin: f.admin,
    adminToken: f["admin-token"],
  });
  process.stdout.write(report);
  return ok ? ExitCode.ok : ExitCode.failed;
}

export interface TestCommand {
  files: string[];
  junit?: string | undefined;
  seed?: number | undefined;
  target?: string | undefined;
  admin?: string | undefined;
  adminToken?: string | undefined;
}

/** Runs the scenarios; returns the report and whether all passed. */
export async function runTestCommand(
  c: TestCommand,
): Promise<{ report: string; ok: boolean; junit?: string }> {
  const seed = c.seed ?? Math.floor(Math.random() * 2 ** 31);
  const options: RunOptions = { seed };
  if (c.target !== undefined) {
    options.target = {
      dataUrl: c.target,
      adminUrl: c.admin!,
      adminToken: c.adminToken ?? process.env.GATEHOUSE_ADMIN_TOKEN ?? null,
    };
  }
  const results: ScenarioResult[] = [];
  for (const file of c.files) {
    let loaded: ReturnType<typeof loadScenarioFile>;
    try {
      loaded = loadScenarioFile(file);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      results.push({ file, name: file, error: err.message, steps: [], passed: false, ms: 0 });
      continue;
    }
    results.push(await runScenario(loaded, options));
  }
  const junit = c.junit === undefined ? undefined : junitReport(results);
  if (c.junit !== undefined) writeFileSync(c.junit, junit!);
  return {
    report: textReport(results, seed),
    ok: results.every((r) => r.passed),
    ...(junit ? { junit } : {}),
  };
}
