/**
 * GET /openapi.json and GET /docs. The Scalar UI's script is served from the binary itself (imported
 * as a file, which `bun build --compile` embeds), and the UI is told not to fetch fonts, so the docs
 * work offline and the page names no outside host.
 */
import { openapi } from "@elysiajs/openapi";
import scalarBundle from "@scalar/api-reference/browser/standalone.js" with { type: "file" };
import { Elysia } from "elysia";
import pkg from "../../../package.json" with { type: "json" };
import { COMPONENTS } from "./components.ts";
import { fixSpec } from "./fix-spec.ts";

export const DOCS_PATH = "/docs";
export const SPEC_PATH = "/openapi.json";
export const SCALAR_PATH = "/docs/scalar.js";

/** Which optional route groups are mounted, so the UI shows no empty section. */
export interface MountedGroups {
  usage: boolean;
  /** GET and POST /clock, in test mode. */
  clock: boolean;
  /** POST /explain. */
  explain: boolean;
  /** The quota routes. */
  quota: boolean;
}

export function docsPlugin(mounted: MountedGroups) {
  // The plugin hands out the same object until routes change; the fixed copy is made once per object.
  let generated: unknown;
  let fixed: Record<string, unknown> | undefined;
  return new Elysia({ normalize: false })
    .onAfterHandle(({ path, responseValue }) => {
      if (path === SPEC_PATH && responseValue && typeof responseValue === "object") {
        if (responseValue !== generated || !fixed) {
          generated = responseValue;
          fixed = fixSpec(responseValue as Record<string, unknown>, COMPONENTS);
        }
        return fixed;
      }
    })
    .use(
      openapi({
        path: DOCS_PATH,
        specPath: SPEC_PATH,
        provider: "scalar",
        documentation: {
          info: {
            title: "gatehouse control API",
            version: pkg.version,
            description:
              "Manage tenants and API keys at runtime, read plans, policies and quotas, reload the config, " +
              "read usage and the audit log. Every route but `GET /healthz` needs " +
              "`Authorization: Bearer <admin token>`. Errors are `application/problem+json` with a " +
              "`request_id`, which every answer also carries in `X-Request-Id` (a client's own " +
              "`X-Request-Id` of at most 64 characters of `A-Z a-z 0-9 . _ -` is kept).",
            license: { name: pkg.license, identifier: pkg.license },
          },
          servers: [
            {
              url: "http://{listener}",
              description: "The control API's listener (server.admin in gateway.yaml).",
              variables: { listener: { default: "127.0.0.1:8081", description: "HOST:PORT" } },
            },
          ],
          tags: [
            { name: "tenants", description: "Tenants created here persist across restarts and reloads." },
            { name: "keys", description: "API keys: secrets are shown once, stored as hashes." },
            {
              name: "credentials",
              description: "Upstream credentials: stored encrypted, write-only, referred to by name.",
            },
            { name: "plans", description: "The plans the config file declares." },
            {
              name: "policy",
              description: "What is in force for a tenant or a key, and where it is declared.",
            },
            ...(mounted.quota
              ? [{ name: "quota", description: "Quota counts of the current period: read, reset, credit." }]
              : []),
            {
              name: "portal",
              description: "The tenant portal: one-time sign-in links, and revoking a tenant's sessions.",
            },
            { name: "config", description: "The configuration in force, reloads and export." },
            ...(mounted.usage ? [{ name: "usage", description: "Usage reports and raw exports." }] : []),
            { name: "audit", description: "Every change made through this API." },
            ...(mounted.explain
              ? [{ name: "explain", description: "What the data plane would do with a request, and why." }]
              : []),
            { name: "operations", description: "Health, readiness and metrics." },
            ...(mounted.clock
              ? [{ name: "test mode", description: "The frozen clock of `gatehouse serve --test-mode`." }]
              : []),
          ],
          components: {
            securitySchemes: {
              adminToken: { type: "http", scheme: "bearer", description: "server.adminToken" },
            },
          },
          security: [{ adminToken: [] }],
        },
        scalar: {
          cdn: SCALAR_PATH,
          url: SPEC_PATH,
          withDefaultFonts: false,
          telemetry: false,
          // These would reach Scalar's hosted services (client, AI agent, developer toolbar).
          hideClientButton: true,
          agent: { disabled: true },
          showDeveloperTools: "never",
        } as never,
      }),
    )
    .get(
      SCALAR_PATH,
      () =>
        new Response(Bun.file(scalarBundle), {
          headers: {
            "content-type": "text/javascript; charset=utf-8",
            "cache-control": "public, max-age=86400",
          },
        }),
      { detail: { hide: true } },
    );
}
