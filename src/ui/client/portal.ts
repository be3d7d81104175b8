/**
 * The tenant portal: signed in with a one-time link (its secret after # never reaches a server log),
 * a tenant's user manages its own keys and reads its usage, quota, limits and API docs.
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
import { actionButton, app, h, replace, showError } from "./dom.ts";

interface SessionInfo {
  tenant: { id: string; name: string; plan: string };
  csrf: string;
  now: string;
  expiresAt: string;
  maxKeys: number;
}

interface PortalKey extends Omit<KeyRow, "editable"> {
  managed: boolean;
}

const clock = new ServerClock();
const api = new Api(() => signedOut("Your session has ended. Open a new sign-in link from your provider."));

function signedOut(message: string): void {
  replace(
    app(),
    h("div", { class: "sign-in" }, h("h1", {}, "API portal"), h("p", { id: "signed-out" }, message)),
  );
  app().removeAttribute("aria-busy");
  document.body.dataset.loaded = "true";
}

async function start(): Promise<void> {
  if (location.pathname === "/sign-in") {
    const token = location.hash.slice(1);
    // The link is used up now: it must not stay in the address bar or the history.
    history.replaceState(null, "", "/");
    if (!token) return signedOut("Open the sign-in link your provider gave you.");
    try {
      await api.send("POST", "/api/session", { token });
    } catch (err) {
      return signedOut(err instanceof ApiError ? err.message : String(err));
    }
  }
  let session: SessionInfo;
  try {
    session = await api.get<SessionInfo>("/api/session");
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
    throw err;
  }
  api.csrf = session.csrf;
  clock.set(session.now);
  let held = 0;
  const row = (k: PortalKey): KeyRow => ({ ...k, editable: k.managed });
  const source: TenantSource = {
    keys: async () => {
      const items = (await api.get<{ items: PortalKey[] }>("/api/keys")).items;
      held = items.length;
      return items.map(row);
    },
    createKey: async (name) => {
      const made = await api.send<{ key: PortalKey; secret: string }>(
        "POST",
        "/api/keys",
        name ? { name } : {},
      );
      return { key: row(made.key), secret: made.secret };
    },
    rotate: async (id, gracePeriod) => {
      const made = await api.send<{ key: PortalKey; secret: string }>(
        "POST",
        `/api/keys/${encodeURIComponent(id)}/rotate`,
        {
          gracePeriod,
        },
      );
      return { key: row(made.key), secret: made.secret };
    },
    endGrace: (id) => api.send("POST", `/api/keys/${encodeURIComponent(id)}/end-grace`),
    setDisabled: (id, disabled) => api.send("PATCH", `/api/keys/${encodeURIComponent(id)}`, { disabled }),
    revoke: (id) => api.send("DELETE", `/api/keys/${encodeURIComponent(id)}`),
    usage: (from, to, groupBy) =>
      api.get(
        `/api/usage?from=${new Date(from).toISOString()}&to=${new Date(to).toISOString()}&groupBy=${groupBy}`,
      ),
    quota: () => api.get("/api/quota"),
    policy: () => api.get<Policy>("/api/policy"),
    refusals: (from, to) =>
      api.get(`/api/refusals?from=${new Date(from).toISOString()}&to=${new Date(to).toISOString()}`),
  };
  const keys = keysSection(source, {
    canCreate: () =>
      session.maxKeys === 0
        ? "Your plan does not let you create keys here."
        : held >= session.maxKeys
          ? `Your plan allows ${session.maxKeys} keys; revoke one to create another.`
          : null,
  });
  const usage = usageSection(source, clock);
  const [policy, quota] = await Promise.all([
    source.policy(),
    quotaSection(source, clock),
    keys.refresh(),
    usage.draw(),
  ]);
  replace(
    app(),
    h(
      "nav",
      {},
      h("span", { class: "brand" }, session.tenant.name),
      h("a", { href: "/docs" }, "API reference"),
      actionButton("Sign out", async () => {
        await api.send("DELETE", "/api/session");
        signedOut("You have signed out.");
      }),
    ),
    keys.root,
    quota,
    policySection(policy, false),
    usage.root,
  );
  app().removeAttribute("aria-busy");
  document.body.dataset.loaded = "true";
}

start().catch(showError);
