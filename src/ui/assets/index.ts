/**
 * The files the pages load, embedded in the binary: imported as files, which `bun build --compile`
 * bundles. The gen/ bundles are built from ../client by `npm run gen` (scripts/gen-ui.ts) and
 * committed; `npm run gen:check` fails when they are stale.
 */
import scalar from "@scalar/api-reference/browser/standalone.js" with { type: "file" };
import dashboardJs from "./gen/dashboard.bundle.js" with { type: "file" };
import docsJs from "./gen/docs.bundle.js" with { type: "file" };
import portalJs from "./gen/portal.bundle.js" with { type: "file" };
import css from "./gen/ui.bundle.css" with { type: "file" };
import icon from "./icon.svg" with { type: "file" };

export interface Asset {
  path: string;
  type: string;
}

const js = "text/javascript; charset=utf-8";
const cssType = "text/css; charset=utf-8";
const svg = "image/svg+xml";

/** The operator dashboard's files, served under /ui/assets/. */
export const DASHBOARD_ASSETS: ReadonlyMap<string, Asset> = new Map([
  ["dashboard.js", { path: dashboardJs, type: js }],
  ["ui.css", { path: css, type: cssType }],
  ["icon.svg", { path: icon, type: svg }],
]);

/** The tenant portal's files, served under /assets/. */
export const PORTAL_ASSETS: ReadonlyMap<string, Asset> = new Map([
  ["portal.js", { path: portalJs, type: js }],
  ["ui.css", { path: css, type: cssType }],
  ["docs.js", { path: docsJs, type: js }],
  ["scalar.js", { path: scalar, type: js }],
  ["icon.svg", { path: icon, type: svg }],
]);
