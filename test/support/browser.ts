/**
 * Debian's Chromium driven by playwright-core, for the dashboard and portal tests: never a downloaded
 * browser. Playwright gives the browser a fresh profile directory (--user-data-dir) of its own and
 * removes it on close; each actor gets a context of its own (its own cookies). Every request any page
 * makes is recorded, so a test can fail on one that leaves the gateway, and every Content-Security-
 * Policy violation a page reports is collected.
 */
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";

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
  browser: Browser;
  /** Every URL any page requested, in order. */
  readonly requests: string[];
  /** Content-Security-Policy violations the pages reported: "directive blocked-uri sample". */
  readonly violations: string[];
  /** A context with cookies of its own: one per person in a test. */
  newContext(): Promise<BrowserContext>;
  close(): Promise<void>;
}

export async function startBrowser(): Promise<TestBrowser> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
  const requests: string[] = [];
  const violations: string[] = [];
  return {
    browser,
    requests,
    violations,
    async newContext() {
      const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
      context.on("request", (r) => requests.push(r.url()));
      await context.exposeBinding("__reportViolation", (_source, text: string) => violations.push(text));
      await context.addInitScript(
        "document.addEventListener('securitypolicyviolation', (e) => " +
          "window.__reportViolation(e.violatedDirective + ' ' + e.blockedURI + ' ' + (e.sample || '')));",
      );
      return context;
    },
    close: () => browser.close(),
  };
}

/** The recorded requests whose origin is none of `allowed` (such as http://127.0.0.1:8081). */
export function foreignRequests(requests: readonly string[], allowed: readonly string[]): string[] {
  const origins = new Set(allowed.map((a) => new URL(a).origin));
  return requests.filter((r) => !r.startsWith("data:") && !origins.has(new URL(r).origin));
}

/** Waits until the page has drawn its first data (every page sets body[data-loaded]). */
export async function loaded(page: Page): Promise<void> {
  await page.waitForSelector("body[data-loaded]", { state: "attached", timeout: 10_000 });
}
