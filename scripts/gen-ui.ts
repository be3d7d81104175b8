/**
 * The browser bundles of the dashboard and the portal: src/ui/client/*.ts built with Bun's bundler
 * (minified, one self-contained file per page, uPlot included) and ui.css (both surfaces' styles) into
 * src/ui/assets/gen/, which the
 * binary embeds. scripts/gen.ts writes them with the other generated files and checks they are fresh.
 */
import { join, relative } from "node:path";

const root = join(import.meta.dir, "..");
const client = join(root, "src/ui/client");
const out = "src/ui/assets/gen";

/** [path relative to the repository, content] of every bundle. */
export async function uiBundles(): Promise<[string, string][]> {
  const result = await Bun.build({
    entrypoints: ["dashboard.ts", "portal.ts", "docs.ts", "ui.css"].map((f) => join(client, f)),
    target: "browser",
    format: "esm",
    minify: true,
    naming: "[name].bundle.[ext]",
    root: client,
  });
  if (!result.success) throw new AggregateError(result.logs, "the UI bundles did not build");
  const files: [string, string][] = [];
  for (const output of result.outputs) {
    files.push([join(out, relative(".", output.path)), await output.text()]);
  }
  return files.sort(([a], [b]) => (a < b ? -1 : 1));
}
