/**
 * What `gatehouse test` prints (one line per scenario, the steps and a diff per failed expectation
 * for the ones that failed, then `N passed, N failed`) and its JUnit XML: one testsuite per scenario,
 * one testcase per step.
 */
import { relative } from "node:path";
import type { ScenarioResult } from "./run.ts";

export function textReport(results: readonly ScenarioResult[], seed: number, cwd = process.cwd()): string {
  const lines: string[] = [
    `gatehouse test: ${results.length} scenario${results.length === 1 ? "" : "s"}, seed ${seed}`,
    "",
  ];
  for (const r of results) {
    const file = relative(cwd, r.file) || r.file;
    lines.push(`${r.passed ? "✓" : "✗"} ${file}: ${r.name} (${r.steps.length} steps, ${ms(r.ms)})`);
    if (r.error !== undefined) {
      for (const l of r.error.split("\n")) lines.push(`    ${l}`);
      continue;
    }
    if (r.passed) continue;
    for (const s of r.steps) {
      const mark = s.status === "passed" ? "✓" : s.status === "failed" ? "✗" : "-";
      const where = s.status === "failed" ? ` (${file}:${s.line}:${s.col})` : "";
      const skipped = s.status === "skipped" ? " (skipped: an earlier step failed)" : "";
      lines.push(`    ${mark} step ${s.index + 1}: ${s.title}${where}${skipped}`);
      for (const f of s.failures) lines.push(`        ${f.at}: expected ${f.expected}, got ${f.actual}`);
      for (const n of s.notes) lines.push(`        note: ${n}`);
    }
  }
  const passed = results.filter((r) => r.passed).length;
  lines.push("", `${passed} passed, ${results.length - passed} failed`);
  return `${lines.join("\n")}\n`;
}

const ms = (n: number) => (n < 1000 ? `${Math.round(n)} ms` : `${(n / 1000).toFixed(2)} s`);
const seconds = (n: number) => (n / 1000).toFixed(3);

/** XML 1.0 text: escaped, and without the characters XML cannot carry at all. */
function xml(text: string): string {
  return text
    .replace(/[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, "\uFFFD")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

export function junitReport(results: readonly ScenarioResult[], cwd = process.cwd()): string {
  const count = (r: ScenarioResult, status: string) => r.steps.filter((s) => s.status === status).length;
  const total = (status: string) => results.reduce((n, r) => n + count(r, status), 0);
  const errors = results.filter((r) => r.error !== undefined).length;
  const tests = results.reduce((n, r) => n + (r.error !== undefined ? 1 : r.steps.length), 0);
  const out = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="gatehouse test" tests="${tests}" failures="${total("failed")}" errors="${errors}" skipped="${total("skipped")}" time="${seconds(results.reduce((n, r) => n + r.ms, 0))}">`,
  ];
  for (const r of results) {
    const file = relative(cwd, r.file) || r.file;
    const classname = xml(file.replace(/\.ya?ml$/, "").replace(/[\\/]/g, "."));
    if (r.error !== undefined) {
      out.push(
        `  <testsuite name="${xml(r.name)}" file="${xml(file)}" tests="1" failures="0" errors="1" skipped="0" time="${seconds(r.ms)}">`,
        `    <testcase name="load and start" classname="${classname}" time="${seconds(r.ms)}">`,
        `      <error message="${xml(r.error.split("\n")[0]!)}" type="setup">${xml(r.error)}</error>`,
        "    </testcase>",
        "  </testsuite>",
      );
      continue;
    }
    out.push(
      `  <testsuite name="${xml(r.name)}" file="${xml(file)}" tests="${r.steps.length}" failures="${count(r, "failed")}" errors="0" skipped="${count(r, "skipped")}" time="${seconds(r.ms)}">`,
    );
    for (const s of r.steps) {
      const name = xml(`step ${s.index + 1}: ${s.title}`);
      const open = `    <testcase name="${name}" classname="${classname}" file="${xml(file)}" line="${s.line}" time="${seconds(s.ms)}"`;
      if (s.status === "passed" && s.notes.length === 0) {
        out.push(`${open}/>`);
        continue;
      }
      out.push(`${open}>`);
      if (s.status === "failed") {
        const detail = [
          ...s.failures.map((f) => `${f.at}: expected ${f.expected}, got ${f.actual}`),
          ...s.notes.map((n) => `note: ${n}`),
        ].join("\n");
        const first = s.failures[0];
        const message = first ? `${first.at}: expected ${first.expected}, got ${first.actual}` : "failed";
        out.push(`      <failure message="${xml(message)}" type="expectation">${xml(detail)}</failure>`);
      } else if (s.status === "skipped") {
        out.push('      <skipped message="an earlier step failed"/>');
      } else {
        out.push(`      <system-out>${xml(s.notes.join("\n"))}</system-out>`);
      }
      out.push("    </testcase>");
    }
    out.push("  </testsuite>");
  }
  out.push("</testsuites>");
  return `${out.join("\n")}\n`;
}
