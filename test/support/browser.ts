/**
 * Debian's Chromium driven by playwright-core, for the dashboard and portal tests: never a downloaded
 * browser. Each browser gets a fresh profile, removed when it closes, and records every request its
 * pages make, so a test can fail on any that leaves the gateway.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type BrowserContext, chromium, type Page } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export interface TestBrowser {
  context: BrowserContext;
  /** Every URL any page requested, in order. */
  readonly requests: string[];
  /** Content-Security-Policy violations the pages reported (directive and blocked URI). */
  readonly violations: string[];
  newPage(): Promise<Page>;
  close(): Promise<void>;
}

export async function startBrowser(): Promise<TestBrowser> {
  const profile = mkdtempSync(join(tmpdir(), "gatehouse-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1000, height: 700 },
  });
  const requests: string[] = [];
  const violations: string[] = [];
  context.on("request", (r) => requests.push(r.url()));
  await context.exposeBinding("__reportViolation", (_source, text: string) => violations.push(text));
  await context.addInitScript(
    "document.addEventListener('securitypolicyviolation', (e) => " +
      "window.__reportViolation(e.violatedDirective + ' ' + e.blockedURI + ' ' + (e.sample || '')));",
  );
  return {
    context,
    requests,
    violations,
    newPage: () => context.newPage(),
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** The hosts of the recorded requests that are not one of `allowed` (origins such as http://127.0.0.1:8081). */
export function foreignRequests(requests: readonly string[], allowed: readonly string[]): string[] {
  const origins = new Set(allowed.map((a) => new URL(a).origin));
  return requests.filter((r) => !r.startsWith("data:") && !origins.has(new URL(r).origin));
}

/** Waits until the page has drawn its first data (every page sets body[data-loaded]). */
export async function loaded(page: Page): Promise<void> {
  await page.waitForSelector("body[data-loaded]", { state: "attached", timeout: 10_000 });
}
