/**
 * `gatehouse test FILE... [--junit FILE] [--seed N] [--target URL --admin URL]`: runs scenario files
 * and prints a report ending in `N passed, N failed`. Exit 0 only when every scenario passed.
 */
import { writeFileSync } from "node:fs";
import { ConfigError } from "../config/errors.ts";
import { loadScenarioFile } from "../scenario/load.ts";
import { junitReport, textReport } from "../scenario/report.ts";
import { type RunOptions, runScenario, type ScenarioResult } from "../scenario/run.ts";

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
