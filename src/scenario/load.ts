/**
 * A scenario file → a validated Scenario, or every problem in it located as `file:line:col`, like
 * gateway.yaml's. `${VAR}` is read from the environment in `secrets:` values only: an inline
 * `gateway:` keeps its references for the gateway's own loader, which reads them from `env:` too.
 */
import { LineCounter, parseDocument } from "yaml";
import { ConfigError, type ConfigIssue, formatPath } from "../config/errors.ts";
import { type Env, interpolate } from "../config/interpolate.ts";
import { Locator } from "../config/locator.ts";
import { readConfigText } from "../config/read-file.ts";
import { validateSchema } from "../config/validate-schema.ts";
import { Scenario } from "./schema.ts";

export interface LoadedScenario {
  readonly file: string;
  readonly scenario: Scenario;
  /** `file:line:col` of the value at `path` (e.g. ["steps", 3]), for reports. */
  at(path: readonly (string | number)[]): { line: number; col: number };
}

export function loadScenarioFile(file: string, env: Env = process.env): LoadedScenario {
  const text = readConfigText(file);
  return parseScenario(text, file, env);
}

export function parseScenario(text: string, file: string, env: Env = process.env): LoadedScenario {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const locator = new Locator(doc, lines);
  const at = (path: readonly (string | number)[], atKey = false) => locator.at(path, atKey);
  const issue = (path: readonly (string | number)[], message: string, hint?: string, atKey = false) => {
    const pos = at(path, atKey);
    return { file, ...pos, path: formatPath(path), message, hint } satisfies ConfigIssue;
  };
  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const pos = lines.linePos(e.pos[0]);
        return { file, line: pos.line, col: pos.col, path: "", message: e.message.split("\n")[0]! };
      }),
    );
  }
  const value = (doc.toJS() ?? {}) as Record<string, unknown>;
  const issues = validateSchema(Scenario, value).map((s) => issue(s.path, s.message, s.hint, s.atKey));
  if (issues.length) throw new ConfigError(issues);
  const scenario = value as Scenario;

  if ((scenario.config === undefined) === (scenario.gateway === undefined)) {
    issues.push(issue([], "give exactly one of config (a gateway.yaml path) or gateway (an inline one)"));
  }
  for (const [id, secret] of Object.entries(scenario.secrets ?? {})) {
    const r = interpolate(secret, env);
    if ("error" in r) issues.push(issue(["secrets", id], r.error, r.hint));
    else scenario.secrets![id] = r.value;
  }
  const names = new Set<string>();
  scenario.steps.forEach((step, i) => {
    if ("background" in step && step.background !== undefined) {
      if (names.has(step.background)) {
        issues.push(
          issue(["steps", i, "background"], `a background request "${step.background}" is already sent`),
        );
      }
      if ("expect" in step && step.expect) {
        issues.push(
          issue(
            ["steps", i, "expect"],
            "a background request is checked by its await step",
            'move expect under "await"',
          ),
        );
      }
      names.add(step.background);
    }
    if ("await" in step && !names.has(step.await)) {
      issues.push(
        issue(["steps", i, "await"], `no background request named "${step.await}" is sent before this step`),
      );
    }
    if ("reload" in step && step.reload.config !== undefined && step.reload.gateway !== undefined) {
      issues.push(issue(["steps", i, "reload"], "give config or gateway, not both"));
    }
  });
  if (issues.length) throw new ConfigError(issues);
  return { file, scenario, at };
}
