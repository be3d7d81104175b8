/** Shutdown leaves every committed row in the database file itself, not only in its WAL. */

import { Database } from "bun:sqlite";
import { expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startTestGateway } from "../support/gateway.ts";

test("a copy of the database file alone, taken right after stop, holds every usage row", async () => {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-close-"));
  try {
    const db = join(dir, "gatehouse.db");
    const gw = startTestGateway(
      `version: 1
upstreams: { echo: { mock: echo } }
plans: { p: { rules: [{ allow: "* /v1/**" }] } }
routes: [{ match: "* /v1/**", upstream: echo }]
tenants: { acme: { plan: p, keys: [{ id: k, secret: demo-acme-0001 }] } }
`,
      { db },
    );
    for (let i = 0; i < 40; i++) {
      await (await fetch(`${gw.dataUrl}/v1/x`, { headers: { "x-api-key": "demo-acme-0001" } })).text();
    }
    await gw.stop();
    // Only the main file, as a backup that ignores -wal and -shm would take it.
    const copy = join(dir, "copy.db");
    copyFileSync(db, copy);
    const reader = new Database(copy, { readonly: true });
    const rows = (reader.query("select count(*) as n from usage").get() as { n: number }).n;
    reader.close();
    expect(rows).toBe(40);
    await gw.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
