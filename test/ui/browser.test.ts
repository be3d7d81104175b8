/**
 * The dashboard and the portal in a real browser (Debian's Chromium, see support/browser.ts) against
 * a test-mode gateway. GATEHOUSE_SCREENSHOTS=1 also writes the README's screenshots to docs/screenshots/.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { join } from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import { foreignRequests, loaded, startBrowser, type TestBrowser } from "../support/browser.ts";
import { startTestGateway, type TestGateway } from "../support/gateway.ts";

// Each test takes about a second; a loaded 2-core machine may need far more to start a browser.
setDefaultTimeout(30_000);

const TOKEN = "k7Qm2xVb9LpR4tZw8NcY3hJd";
const YAML = `version: 1
server:
  adminToken: ${TOKEN}
  portal: 127.0.0.1:0
upstreams:
  sandbox: { mock: echo }
plans:
  free:
    limits: [{ limit: 5, window: 1m }]
    quota: { limit: 200, period: day }
    portal: { maxKeys: 3 }
    rules:
      - allow: "* /v1/**"
      - deny: "* /v1/admin/**"
routes:
  - match: "* /v1/**"
    upstream: sandbox
  - match: POST /v1/reports/**
    upstream: sandbox
    cost: 10
tenants:
  acme:
    name: Acme Corp
    plan: free
    keys:
      - { id: acme-dev, secret: acme-secret-0001 }
  globex:
    name: Globex
    plan: free
    keys:
      - { id: globex-dev, secret: globex-secret-0001 }
`;

const SCREENSHOTS = process.env.GATEHOUSE_SCREENSHOTS
  ? join(import.meta.dir, "../../docs/screenshots")
  : null;
const shoot = async (page: Page, name: string, fullPage = true) => {
  if (SCREENSHOTS) await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage });
};

let gw: TestGateway;
let browser: TestBrowser;
let operator: BrowserContext;
/** Requests the data plane answered for acme: the usage the charts must show. */
const sent = { ok: 0, refused: 0 };

const admin = async (method: string, path: string, body?: unknown) => {
  const r = await fetch(`${gw.adminUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body ? { "content-type": "application/json" } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON answers
  return { status: r.status, json: (await r.json().catch(() => null)) as any };
};
const data = async (secret: string, path = "/v1/items", method = "GET") => {
  const r = await fetch(`${gw.dataUrl}${path}`, { method, headers: { "x-api-key": secret } });
  await r.arrayBuffer();
  return r.status;
};

beforeAll(async () => {
  gw = startTestGateway(YAML, { testClockStart: Date.parse("2026-01-15T09:30:00Z") });
  // An hour of traffic in three bursts, a refusal by rule and some by the rate limit.
  for (let burst = 0; burst < 3; burst++) {
    for (let i = 0; i < 4; i++) expect(await data("acme-secret-0001")).toBe(200);
    sent.ok += 4;
    expect((await admin("POST", "/clock", { advance: "20m" })).status).toBe(200);
  }
  expect(await data("acme-secret-0001", "/v1/admin/users")).toBe(403);
  for (let i = 0; i < 7; i++) {
    const status = await data("acme-secret-0001");
    if (status === 200) sent.ok++;
    else sent.refused++;
  }
  sent.refused++;
  expect(sent.refused).toBe(3);
  expect((await admin("POST", "/clock", { advance: "2m" })).status).toBe(200);
  browser = await startBrowser();
  operator = await browser.newContext();
});
afterAll(async () => {
  await browser?.close();
  await gw?.close();
});

async function signedIn(): Promise<Page> {
  const page = await operator.newPage();
  await page.goto(`${gw.adminUrl}/ui`);
  await loaded(page);
  if (page.url().includes("/ui/sign-in")) {
    await page.fill("input[name=token]", TOKEN);
    await page.click("button[type=submit]");
    await page.waitForURL(`${gw.adminUrl}/ui`);
    await loaded(page);
  }
  return page;
}

describe("the operator dashboard", () => {
  test("signs in once with the token, then shows every tenant's rate, refusals and quota", async () => {
    const page = await operator.newPage();
    await page.goto(`${gw.adminUrl}/ui`);
    await page.waitForURL(/\/ui\/sign-in\?next=/);
    await loaded(page);
    await page.fill("input[name=token]", "not-the-token-but-long-enough");
    await page.click("button[type=submit]");
    await page.waitForSelector("p.error");
    await page.fill("input[name=token]", TOKEN);
    await page.click("button[type=submit]");
    await page.waitForURL(`${gw.adminUrl}/ui`);
    await loaded(page);
    const cookies = await operator.cookies(gw.adminUrl);
    expect(cookies.map((c) => [c.name, c.httpOnly, c.sameSite])).toEqual([
      ["gatehouse_admin", true, "Strict"],
    ]);
    const row = page.locator("tr", { hasText: "Acme Corp" });
    expect(await row.locator("li[data-code=forbidden]").textContent()).toBe("forbidden: 1");
    expect(await row.locator("li[data-code=rate_limited]").textContent()).toBe("rate_limited: 2");
    expect(await row.locator("[data-quota]").textContent()).toContain("quota-day");
    expect(await page.locator("#config").textContent()).toContain("The last reload succeeded.");
    await shoot(page, "dashboard-overview");
    // /docs opens in the same browser with the session.
    const docs = await page.goto(`${gw.adminUrl}/docs`);
    expect(docs?.status()).toBe(200);
    await page.close();
  });

  test("a new key's secret is shown once and works; it is not shown again; rotation shows the next", async () => {
    const page = await signedIn();
    await page.goto(`${gw.adminUrl}/ui/tenants/acme`);
    await loaded(page);
    await page.fill("input[name=key-name]", "browser key");
    await page.click("text=Create key");
    const secret = (await page.locator("[data-secret]").textContent())!;
    expect(secret).toMatch(/^ghk_[A-Za-z0-9]{38}$/);
    expect(await data(secret)).toBe(200);
    const keyId = (await admin("GET", "/tenants/acme/keys")).json.items.find(
      (k: { name: string }) => k.name === "browser key",
    ).id as string;

    await page.reload();
    await loaded(page);
    expect(await page.locator("[data-secret]").count()).toBe(0);
    expect(await page.content()).not.toContain(secret);
    expect(JSON.stringify((await admin("GET", `/keys/${keyId}`)).json)).not.toContain(secret.slice(4));

    const actions = page.locator(`[data-key="${keyId}"]`);
    await actions.locator("select[name=grace]").selectOption("0s");
    await actions.locator("text=Rotate").click();
    // (Not waitForFunction: it evaluates a string in the page, which the page's CSP forbids.)
    await page.locator("[data-secret]", { hasNotText: secret }).waitFor();
    const rotated = (await page.locator("[data-secret]").textContent())!;
    expect(rotated).toMatch(/^ghk_/);
    expect(await data(secret)).toBe(401);
    expect(await data(rotated)).toBe(200);

    await actions.locator("text=Disable").click();
    await page.waitForSelector(`[data-key="${keyId}"] >> text=Enable`);
    expect((await admin("GET", `/keys/${keyId}`)).json.disabled).toBe(true);
    await page.locator(`[data-key="${keyId}"] >> text=Revoke`).click();
    await page.locator(`[data-key="${keyId}"] >> text=Really revoke?`).click();
    await page.waitForSelector(`[data-key="${keyId}"]`, { state: "detached" });
    expect((await admin("GET", `/keys/${keyId}`)).status).toBe(404);
    await page.close();
  });

  test("charts are drawn from the usage rows, and the page loads nothing from another host", async () => {
    browser.requests.length = 0;
    browser.violations.length = 0;
    const page = await signedIn();
    await page.goto(`${gw.adminUrl}/ui/tenants/acme`);
    await loaded(page);
    await page.waitForSelector("figure[data-chart=requests] canvas");
    // biome-ignore lint/suspicious/noExplicitAny: the page's chart registry
    const charts: any = await page.evaluate("window.gatehouse.charts");
    const sum = (xs: (number | null)[]) => xs.reduce<number>((a, b) => a + (b ?? 0), 0);
    const usage = (await admin("GET", "/usage?tenant=acme&groupBy=hour&to=2026-01-16T00:00:00Z")).json;
    expect(sum(charts.requests.series.requests)).toBe(usage.total.requests);
    expect(sum(charts.requests.series.requests)).toBeGreaterThanOrEqual(sent.ok + sent.refused);
    expect(sum(charts.requests.series.errors)).toBe(usage.total.errors);
    expect(sum(charts.cost.series.cost)).toBe(usage.total.costUnits);
    // Hour buckets over the last 24 hours: the bursts fell in the 09:00 and 10:00 hours.
    const byHour = Object.fromEntries(
      charts.requests.x.map((x: number, i: number) => [
        new Date(x * 1000).toISOString().slice(11, 13),
        charts.requests.series.requests[i],
      ]),
    );
    expect(byHour["09"] + byHour["10"]).toBe(usage.total.requests);
    expect(charts["quota:quota-day"].series.remaining.at(-2)).toBe(200 - usage.total.costUnits);
    expect(await page.locator("#refusals tbody tr").count()).toBe(sent.refused);
    await shoot(page, "dashboard-tenant");
    expect(foreignRequests(browser.requests, [gw.adminUrl])).toEqual([]);
    expect(browser.violations).toEqual([]);
    await page.close();
  });

  test("another site's page cannot change anything with the operator's cookie", async () => {
    const evil = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch: () =>
        new Response(
          `<!doctype html><body><form id=f method=POST action="${gw.adminUrl}/tenants" enctype="text/plain">` +
            `<input name='{"id":"evil","plan":"free","x":"' value='"}'></form><script>
            fetch(${JSON.stringify(`${gw.adminUrl}/tenants`)}, { method: "POST", credentials: "include", mode: "no-cors",
              body: JSON.stringify({ id: "evil2", plan: "free" }) }).finally(() => document.getElementById("f").submit());
            </script></body>`,
          { headers: { "content-type": "text/html" } },
        ),
    });
    try {
      await signedIn().then((p) => p.close());
      const page = await operator.newPage();
      const answers: number[] = [];
      page.on("response", (r) => {
        if (r.url().startsWith(`${gw.adminUrl}/tenants`)) answers.push(r.status());
      });
      await page.goto(`http://127.0.0.1:${evil.port}/`);
      await page.waitForURL(`${gw.adminUrl}/tenants`);
      expect(answers.length).toBeGreaterThan(0);
      for (const status of answers) expect(status).toBe(403);
      const ids = (await admin("GET", "/tenants")).json.items.map((t: { id: string }) => t.id);
      expect(ids).toEqual(["acme", "globex"]);
      await page.close();
    } finally {
      evil.stop(true);
    }
  });
});

describe("the tenant portal", () => {
  test("a one-time link signs a tenant in to its own keys, usage and docs, and nothing of the operator's", async () => {
    browser.requests.length = 0;
    browser.violations.length = 0;
    const tenant = await browser.newContext();
    const page = await tenant.newPage();
    const { url } = (await admin("POST", "/tenants/acme/portal-links", {})).json;
    await page.goto(url);
    await loaded(page);
    expect(page.url()).toBe(`${gw.portalUrl}/`);
    expect(await page.locator("nav .brand").textContent()).toBe("Acme Corp");
    const keys = await page.locator("#keys tbody").textContent();
    expect(keys).toContain("acme-dev");
    expect(keys).not.toContain("globex");
    await page.fill("input[name=key-name]", "from the portal");
    await page.click("text=Create key");
    const secret = (await page.locator("[data-secret]").textContent())!;
    expect(await data(secret)).toBe(200);
    await page.waitForSelector("figure[data-chart=requests] canvas");
    await shoot(page, "portal");
    expect(foreignRequests(browser.requests, [gw.portalUrl!])).toEqual([]);
    expect(browser.violations).toEqual([]);

    // The link is spent: opening it again signs no one in.
    const again = await tenant.newPage();
    await again.goto(url);
    await loaded(again);
    expect(await again.locator("#signed-out").textContent()).toContain("not valid");
    await again.close();

    // The control API and the operator's pages stay shut to the tenant's browser.
    const api = await page.evaluate(
      `fetch(${JSON.stringify(`${gw.adminUrl}/tenants`)}, { credentials: "include" }).then((r) => r.status, () => "blocked")`,
    );
    expect(api).toBe("blocked");
    const other = await tenant.newPage();
    await other.goto(`${gw.adminUrl}/ui`);
    await other.waitForURL(/\/ui\/sign-in/);
    await other.close();
    await tenant.close();
  });

  test("the API reference lists the tenant's operations, rendered from the portal alone", async () => {
    browser.requests.length = 0;
    const tenant = await browser.newContext();
    const page = await tenant.newPage();
    await page.goto((await admin("POST", "/tenants/globex/portal-links", {})).json.url);
    await loaded(page);
    await page.goto(`${gw.portalUrl}/docs`);
    await page.waitForSelector("text=API reference for Globex");
    expect(await page.locator("body").textContent()).toContain("/v1/{path}");
    expect(await page.locator("body").textContent()).toContain("Except * /v1/admin/**, which is refused.");
    await shoot(page, "portal-docs", false);
    expect(foreignRequests(browser.requests, [gw.portalUrl!])).toEqual([]);
    await tenant.close();
  });

  test("the session ends after 30 idle minutes, and the page says so", async () => {
    const tenant = await browser.newContext();
    const page = await tenant.newPage();
    await page.goto((await admin("POST", "/tenants/acme/portal-links", {})).json.url);
    await loaded(page);
    expect((await admin("POST", "/clock", { advance: "31m" })).status).toBe(200);
    await page.locator("select[name=range]").selectOption("0");
    await page.waitForSelector("#signed-out");
    expect(await page.locator("#signed-out").textContent()).toContain("Your session has ended");
    await page.reload();
    await loaded(page);
    expect(await page.locator("nav").count()).toBe(0);
    await tenant.close();
  });
});
