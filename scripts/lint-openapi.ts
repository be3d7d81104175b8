/**
 * Lints the control API's OpenAPI document with Redocly (rules in redocly.yaml): starts the shipped
 * gateway.yaml in-process, in test mode so that every optional route group is mounted, fetches
 * GET /openapi.json and runs `redocly lint` on it. Offline: telemetry and update checks are off.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startGateway } from "../src/app.ts";
import { silentLog } from "../src/lib/log.ts";

const root = join(import.meta.dir, "..");
const dir = mkdtempSync(join(tmpdir(), "gatehouse-openapi-"));
const gateway = startGateway({
  configPath: join(root, "gateway.yaml"),
  db: ":memory:",
  listen: "127.0.0.1:0",
  admin: "127.0.0.1:0",
  env: {},
  testMode: {},
  watchConfig: false,
  log: silentLog,
});
let code = 1;
try {
  const spec = await (await fetch(`${gateway.adminUrl}/openapi.json`)).text();
  const file = join(dir, "openapi.json");
  writeFileSync(file, spec);
  const lint = Bun.spawnSync(
    [join(root, "node_modules/.bin/redocly"), "lint", "--config", join(root, "redocly.yaml"), file],
    {
      env: { ...process.env, REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true" },
      stdout: "pipe",
      stderr: "pipe",
    },
  );
  code = lint.exitCode ?? 1;
  if (code === 0) console.log("openapi.json: redocly lint passed");
  else process.stderr.write(`${lint.stdout}${lint.stderr}`);
} finally {
  await gateway.stop();
  rmSync(dir, { recursive: true, force: true });
}
process.exit(code);
