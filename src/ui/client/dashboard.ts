/**
 * The operator dashboard (/ui on the admin listener). It reads and changes everything through the
 * control API with the session cookie; /ui/api adds signing in and out, the overview and refusals.
 */
import { Api, ApiError, ServerClock } from "./api.ts";
import {
  type KeyRow,
  keysSection,
  type Policy,
  policySection,
  quotaSection,
  type TenantSource,
  usageSection,
} from "./components.ts";
import { actionButton, app, h, replace, section, showError, table } from "./dom.ts";
import { num, percent, rate, when } from "./format.ts";

interface SessionInfo {
  mode: "token" | "open";
  csrf: string | null;
  expiresAt: string | null;
  now: string;
  portal: boolean;
}

interface TenantOverview {
  id: string;
  name: string;
  plan: string;
  disabled: boolean;
  recent: { requests: number; errors: number; perSecond: number } | null;
  refusals: Record<string, number>;
  quotas: { name: string; limit: number; used: number; resetsAt: string; projected: number | null }[];
}

const clock = new ServerClock();
const api = new Api(() => signInAgain());
let session: SessionInfo | null = null;

function signInAgain(): void {
  if (location.pathname === "/ui/sign-in") return;
  location.assign(`/ui/sign-in?next=${encodeURIComponent(location.pathname)}`);
}

async function start(): Promise<void> {
  const root = app();
  if (location.pathname === "/ui/sign-in") return signInPage(root);
  const tenant = /^\/ui\/tenants\/([^/]+)$/.exec(location.pathname);
  // The overview needs nothing from the session, so its data is asked for at the same time.
  const overview = tenant ? null : overviewData();
  try {
    session = await api.get<SessionInfo>("/ui/api/session");
  } catch (err) {
    overview?.catch(() => {});
    if (err instanceof ApiError && err.status === 401) return;
    throw err;
  }
  api.csrf = session.csrf;
  clock.set(session.now);
  replace(
    root,
    header(),
    tenant ? await tenantPage(decodeURIComponent(tenant[1]!)) : overviewPage(await overview!),
  );
  root.removeAttribute("aria-busy");
  document.body.dataset.loaded = "true";
}

function header(): HTMLElement {
  return h(
    "nav",
    {},
    h("a", { href: "/ui", class: "brand" }, "gatehouse"),
    h("a", { href: "/docs" }, "API docs"),
    session?.mode === "token"
      ? actionButton("Sign out", async () => {
          await api.send("DELETE", "/ui/api/session");
          location.assign("/ui/sign-in");
        })
      : h("span", { class: "note" }, "no admin token: open to this machine"),
  );
}

// ------------------------------------------------------------------------------------------ sign-in

function signInPage(root: HTMLElement): void {
  const input = h("input", {
    type: "password",
    name: "token",
    autocomplete: "current-password",
    "aria-label": "admin token",
    required: true,
  });
  const message = h("p", { class: "note" }, "Paste the admin token (server.adminToken).");
  const form = h(
    "form",
    { class: "sign-in" },
    h("h1", {}, "gatehouse"),
    message,
    input,
    h("button", { type: "submit" }, "Sign in"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api.send("POST", "/ui/api/session", undefined, { authorization: `Bearer ${input.value.trim()}` });
      const next = new URLSearchParams(location.search).get("next") ?? "/ui";
      location.assign(next.startsWith("/ui") ? next : "/ui");
    } catch (err) {
      message.textContent =
        err instanceof ApiError && err.status === 401
          ? "That is not the admin token."
          : String((err as Error).message);
      message.className = "error";
    }
  });
  replace(root, form);
  root.removeAttribute("aria-busy");
  document.body.dataset.loaded = "true";
}

// ----------------------------------------------------------------------------------------- overview

type OverviewData = Awaited<ReturnType<typeof overviewData>>;

function overviewData() {
  return Promise.all([
    api.get<{ tenants: TenantOverview[]; rateWindow: { from: string; to: string }; refusalsSince: string }>(
      "/ui/api/overview",
    ),
    api.get<{
      version: number;
      file: string;
      loadedAt: string;
      lastReloadError: { at: string; errors: string[] } | null;
    }>("/config"),
  ]);
}

function overviewPage([data, config]: OverviewData): HTMLElement {
  const tenants = section("Tenants", "tenants");
  tenants.body.append(
    h(
      "p",
      { class: "note" },
      `Requests and errors: ${when(data.rateWindow.from)} to ${when(data.rateWindow.to)}. ` +
        `Refusals: since ${when(data.refusalsSince)}.`,
    ),
    table(
      ["Tenant", "Plan", "Requests", "Errors (5 min)", "Refusals by type", "Quota"],
      data.tenants,
      (t) => [
        h(
          "a",
          { href: `/ui/tenants/${encodeURIComponent(t.id)}` },
          t.name,
          t.name !== t.id ? h("code", {}, ` ${t.id}`) : null,
        ),
        t.plan + (t.disabled ? " (disabled)" : ""),
        t.recent ? rate(t.recent.perSecond) : "—",
        t.recent ? num(t.recent.errors) : "—",
        refusalList(t.refusals),
        h("div", {}, ...t.quotas.map(quotaBar)),
      ],
      "No tenants.",
    ),
  );
  const state = section("Configuration", "config");
  state.body.append(
    h("p", {}, `Version ${config.version} of ${config.file}, loaded ${when(config.loadedAt)}.`),
    config.lastReloadError
      ? h(
          "div",
          { class: "error" },
          h(
            "p",
            {},
            `The last reload failed at ${when(config.lastReloadError.at)}; the version above keeps serving:`,
          ),
          h("ul", {}, ...config.lastReloadError.errors.map((e) => h("li", {}, h("code", {}, e)))),
        )
      : h("p", { class: "ok" }, "The last reload succeeded."),
  );
  return h("div", {}, tenants.root, state.root);
}

function refusalList(refusals: Record<string, number>): HTMLElement | string {
  const entries = Object.entries(refusals).sort((a, b) => b[1] - a[1]);
  if (entries.length === 0) return "none";
  return h(
    "ul",
    { class: "refusals" },
    ...entries.map(([code, n]) => h("li", { "data-code": code }, `${code}: ${num(n)}`)),
  );
}

function quotaBar(q: TenantOverview["quotas"][number]): HTMLElement {
  const used = percent(q.used, q.limit);
  const projected = q.projected === null ? null : percent(q.projected, q.limit);
  const meter = h("meter", { min: 0, max: q.limit, value: Math.min(q.used, q.limit), high: q.limit * 0.8 });
  return h(
    "div",
    { class: "quota-bar", "data-quota": q.name },
    meter,
    ` ${q.name}: ${used}%`,
    projected === null ? "" : `, heading for ${projected}%`,
    ` by ${when(q.resetsAt).slice(0, 10)}`,
  );
}

// ------------------------------------------------------------------------------------------- tenant

interface AdminKey extends Omit<KeyRow, "editable"> {
  source: "file" | "api";
}
const row = (k: AdminKey): KeyRow => ({ ...k, editable: k.source === "api" });

function operatorSource(id: string): TenantSource {
  const t = encodeURIComponent(id);
  const range = (from: number, to: number) =>
    `from=${new Date(from).toISOString()}&to=${new Date(to).toISOString()}`;
  return {
    keys: async () => (await api.get<{ items: AdminKey[] }>(`/tenants/${t}/keys?limit=200`)).items.map(row),
    createKey: async (name) => {
      const made = await api.send<{ key: AdminKey; secret: string }>(
        "POST",
        `/tenants/${t}/keys`,
        name ? { name } : {},
      );
      return { key: row(made.key), secret: made.secret };
    },
    rotate: async (key, gracePeriod) => {
      const made = await api.send<{ key: AdminKey; secret: string }>(
        "POST",
        `/keys/${encodeURIComponent(key)}/rotate`,
        {
          gracePeriod,
        },
      );
      return { key: row(made.key), secret: made.secret };
    },
    endGrace: (key) => api.send("POST", `/keys/${encodeURIComponent(key)}/end-grace`),
    setDisabled: (key, disabled) => api.send("PATCH", `/keys/${encodeURIComponent(key)}`, { disabled }),
    revoke: (key) => api.send("DELETE", `/keys/${encodeURIComponent(key)}`),
    usage: (from, to, groupBy) => api.get(`/usage?tenant=${t}&${range(from, to)}&groupBy=${groupBy}`),
    quota: () => api.get(`/tenants/${t}/quota`),
    policy: () => api.get<Policy>(`/tenants/${t}/policy`),
    refusals: (from, to) => api.get(`/ui/api/tenants/${t}/refusals?${range(from, to)}`),
  };
}

async function tenantPage(id: string): Promise<HTMLElement> {
  const tenant = await api.get<{
    id: string;
    name: string;
    plan: string;
    disabled: boolean;
    source: string;
    sourceRef: string | null;
  }>(`/tenants/${encodeURIComponent(id)}`);
  const source = operatorSource(id);
  const keys = keysSection(source, { canCreate: () => null });
  const usage = usageSection(source, clock);
  const [policy, quota] = await Promise.all([
    source.policy(),
    quotaSection(source, clock),
    keys.refresh(),
    usage.draw(),
  ]);
  return h(
    "div",
    {},
    h(
      "header",
      { class: "tenant" },
      h("h1", {}, tenant.name, " ", h("code", {}, tenant.id)),
      h(
        "p",
        {},
        `Plan ${tenant.plan}`,
        tenant.disabled ? ", disabled" : "",
        tenant.sourceRef ? `; declared in ${tenant.sourceRef}` : "; made through the API",
      ),
    ),
    session?.portal ? portalBox(id) : null,
    keys.root,
    policySection(policy, true),
    quota,
    usage.root,
  );
}

function portalBox(id: string): HTMLElement {
  const out = h("div", { class: "portal-link" });
  const { root, body } = section("Tenant portal", "portal");
  body.append(
    h(
      "p",
      { class: "note" },
      "A one-time link signs its opener in to the portal as this tenant for up to 8 hours.",
    ),
    actionButton("Create a sign-in link", async () => {
      try {
        const link = await api.send<{ url: string; expiresAt: string }>(
          "POST",
          `/tenants/${encodeURIComponent(id)}/portal-links`,
          {},
        );
        replace(
          out,
          h("p", {}, "Works once, until ", when(link.expiresAt), ": "),
          h("code", { "data-link": "" }, link.url),
        );
      } catch (err) {
        showError(err);
      }
    }),
    actionButton("End all portal sessions", async () => {
      try {
        const r = await api.send<{ links: number; sessions: number }>(
          "DELETE",
          `/tenants/${encodeURIComponent(id)}/portal-sessions`,
        );
        replace(out, h("p", {}, `Ended ${r.sessions} sessions and ${r.links} unused links.`));
      } catch (err) {
        showError(err);
      }
    }),
    out,
  );
  return root;
}

start().catch(showError);
