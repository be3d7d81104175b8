/**
 * The spec is fit for code generation: openapi-typescript turns it into types, a client written
 * against them with openapi-fetch compiles under strict tsc (and a wrong call does not), and that
 * client then drives a running gateway. Everything runs offline.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import openapiTS, { astToString } from "openapi-typescript";
import { startTestGateway, type TestGateway } from "../support/gateway.ts";

const root = join(import.meta.dir, "../..");

const CLIENT = `import createClient from "openapi-fetch";
import type { components, paths } from "./schema";

type Tenant = components["schemas"]["Tenant"];
type KeyWithSecret = components["schemas"]["KeyWithSecret"];
type Problem = components["schemas"]["Problem"];

export async function scenario(baseUrl: string) {
  const client = createClient<paths>({ baseUrl });
  const created = await client.POST("/tenants", { body: { id: "codegen-co", plan: "free", name: "Codegen Co" } });
  if (!created.data) throw new Error(\`createTenant: \${created.response.status}\`);
  const tenant: Tenant = created.data;
  const made = await client.POST("/tenants/{id}/keys", {
    params: { path: { id: tenant.id } },
    body: { name: "sdk", metadata: { team: "platform" } },
  });
  if (!made.data) throw new Error(\`createKey: \${made.response.status}\`);
  const key: KeyWithSecret = made.data;
  const listed = await client.GET("/tenants/{id}/keys", { params: { path: { id: tenant.id }, query: { limit: 10 } } });
  const usage = await client.GET("/usage", { params: { query: { tenant: tenant.id, groupBy: "month" } } });
  const missing = await client.GET("/tenants/{id}", { params: { path: { id: "no-such-tenant" } } });
  const problem: Problem | undefined = missing.error;
  return {
    tenant: tenant.id,
    secret: key.secret,
    keyName: key.key.name,
    keys: listed.data?.items.map((k) => [k.id, k.name, k.metadata]),
    usageGroupBy: usage.data?.groupBy,
    problemStatus: problem?.status,
    problemRequestId: problem?.request_id,
  };
}

/** Never run: tsc must refuse it, so the types say something. */
export async function refusedByTheTypes(baseUrl: string) {
  const client = createClient<paths>({ baseUrl });
  // @ts-expect-error plan is required
  await client.POST("/tenants", { body: { id: "x" } });
  // @ts-expect-error groupBy takes only the documented values
  await client.GET("/usage", { params: { query: { groupBy: "week" } } });
}
`;

let gw: TestGateway;
let dir: string;
beforeAll(() => {
  gw = startTestGateway(readFileSync(join(root, "gateway.yaml"), "utf8"), {
    testClockStart: Date.parse("2026-01-15T12:00:00Z"),
  });
  dir = mkdtempSync(join(tmpdir(), "gatehouse-client-"));
  // The generated client resolves openapi-fetch (and tsc its types) from the project's packages.
  symlinkSync(join(root, "node_modules"), join(dir, "node_modules"), "dir");
});
afterAll(async () => {
  await gw.close();
  rmSync(dir, { recursive: true, force: true });
});

test("a client generated from the spec compiles and drives the API", async () => {
  const spec = (await (await fetch(`${gw.adminUrl}/openapi.json`)).json()) as Record<string, unknown>;
  writeFileSync(join(dir, "schema.d.ts"), astToString(await openapiTS(spec as never)));
  writeFileSync(join(dir, "client.ts"), CLIENT);
  writeFileSync(
    join(dir, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noEmit: true,
        target: "ES2022",
        module: "ESNext",
        moduleResolution: "bundler",
        lib: ["ES2022", "DOM"],
        types: [],
        skipLibCheck: true,
      },
      files: ["client.ts"],
    }),
  );
  const tsc = Bun.spawn([join(root, "node_modules/.bin/tsc"), "-p", join(dir, "tsconfig.json")], {
    stdout: "pipe",
    stderr: "pipe",
  });
  const out = await new Response(tsc.stdout).text();
  expect(out).toBe("");
  expect(await tsc.exited).toBe(0);

  const { scenario } = (await import(join(dir, "client.ts"))) as {
    scenario(baseUrl: string): Promise<Record<string, unknown>>;
  };
  const result = await scenario(gw.adminUrl);
  expect(result).toMatchObject({
    tenant: "codegen-co",
    keyName: "sdk",
    usageGroupBy: "month",
    problemStatus: 404,
  });
  expect(result.secret).toStartWith("ghk_");
  expect(result.keys).toEqual([[expect.stringMatching(/^key_/), "sdk", { team: "platform" }]]);
  expect(result.problemRequestId).toBeString();
}, 60_000);
