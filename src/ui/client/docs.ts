/**
 * The portal's API reference: Scalar (served by the portal itself, scalar.js) renders the OpenAPI
 * document of the operations the signed-in tenant may call, with nothing fetched from elsewhere.
 */

declare global {
  interface Window {
    Scalar?: { createApiReference(target: string, config: Record<string, unknown>): unknown };
  }
}

async function start(): Promise<void> {
  const root = document.getElementById("app")!;
  const res = await fetch("/api/session", { credentials: "same-origin" });
  if (!res.ok) {
    root.textContent = "Sign in with the link your provider gave you to see your API reference.";
    document.body.dataset.loaded = "true";
    return;
  }
  window.Scalar!.createApiReference("#app", {
    url: "/api/openapi.json",
    withDefaultFonts: false,
    telemetry: false,
    hideClientButton: true,
    agent: { disabled: true },
    showDeveloperTools: "never",
    mcp: { disabled: true },
  });
  root.removeAttribute("aria-busy");
  document.body.dataset.loaded = "true";
}

start();

export {};
