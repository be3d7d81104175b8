/**
 * Keys written in the config (HS for offline development, asymmetric from a file), per-route choice
 * of credential sources, and a config without identity: behaving exactly as API keys always did.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT } from "jose";
import { startTestGateway, type TestGateway } from "../support/gateway.ts";
import { makeKey, sign, type TestKey } from "../support/jwt.ts";

const SECRET = Buffer.from("0123456789abcdef0123456789abcdef-dev").toString("base64url");
let gw: TestGateway;
let es: TestKey;
let other: TestKey;
const dir = mkdtempSync(join(tmpdir(), "gatehouse-jwks-"));

beforeAll(async () => {
  [es, other] = await Promise.all([makeKey("file-1", "ES256"), makeKey("file-1", "ES256")]);
  const jwksFile = join(dir, "jwks.json");
  writeFileSync(jwksFile, JSON.stringify({ keys: [es.publicJwk] }));
  gw = startTestGateway(
    `version: 1
identity:
  - apiKey: {}
  - jwt:
      name: dev
      issuer: dev
      audience: api
      algorithms: [HS256]
      jwks: { keys: [{ kty: oct, k: "\${DEV_SECRET}" }] }
  - jwt:
      name: partners
      issuer: partners
      audience: api
      algorithms: [ES256]
      jwks: { file: "\${JWKS_FILE}" }
upstreams:
  echo: { mock: echo }
plans:
  basic: { rules: [{ allow: "* /v1/**" }, { allow: "* /partners/**" }] }
routes:
  - { match: "* /v1/**", upstream: echo }
  - { match: "* /partners/**", upstream: echo, identity: [partners] }
tenants:
  acme: { plan: basic, keys: [{ id: acme-key, secret: acme-secret-0001 }] }
`,
    { env: { DEV_SECRET: SECRET, JWKS_FILE: jwksFile } },
  );
});
afterAll(async () => {
  await gw?.close();
  rmSync(dir, { recursive: true, force: true });
});

const now = () => Math.floor(Date.now() / 1000);
const claims = (iss: string) => ({ iss, aud: "api", sub: "acme", exp: now() + 300, iat: now() });
const call = (path: string, auth: string) =>
  fetch(`${gw.dataUrl}${path}`, { headers: { authorization: auth } }).then((r) => r.status);

test("an HS256 source verifies with its written secret, and only HS256", async () => {
  const hs = await new SignJWT(claims("dev"))
    .setProtectedHeader({ alg: "HS256" })
    .sign(Buffer.from(SECRET, "base64url"));
  expect(await call("/v1/x", `Bearer ${hs}`)).toBe(200);
  const wrong = await new SignJWT(claims("dev"))
    .setProtectedHeader({ alg: "HS256" })
    .sign(new TextEncoder().encode("another-secret-another-secret-xx"));
  expect(await call("/v1/x", `Bearer ${wrong}`)).toBe(401);
  // A token of the dev issuer signed by an asymmetric key: HS sources hold no such key.
  expect(await call("/v1/x", `Bearer ${await sign(es, claims("dev"))}`)).toBe(401);
});

test("a JWKS file verifies its issuer's tokens; a route that lists sources accepts only those", async () => {
  const partner = `Bearer ${await sign(es, claims("partners"))}`;
  expect(await call("/partners/x", partner)).toBe(200);
  expect(await call("/v1/x", partner)).toBe(200);
  expect(await call("/partners/x", `Bearer ${await sign(other, claims("partners"))}`)).toBe(401);
  // The partners route takes no API key and no dev token, with the same 401 as any stranger.
  const key = await fetch(`${gw.dataUrl}/partners/x`, { headers: { "x-api-key": "acme-secret-0001" } });
  const stranger = await fetch(`${gw.dataUrl}/partners/x`, { headers: { "x-api-key": "nobody-00000" } });
  expect(key.status).toBe(401);
  const body = async (r: Response) => {
    const { request_id: _, ...rest } = (await r.json()) as Record<string, unknown>;
    return rest;
  };
  expect(await body(key)).toEqual(await body(stranger));
  expect(await call("/v1/x", "Bearer acme-secret-0001")).toBe(200);
  const dev = await new SignJWT(claims("dev"))
    .setProtectedHeader({ alg: "HS256" })
    .sign(Buffer.from(SECRET, "base64url"));
  expect(await call("/partners/x", `Bearer ${dev}`)).toBe(401);
});

test("without identity:, API keys work as always and tokens open nothing", async () => {
  const plain = startTestGateway(`version: 1
upstreams: { echo: { mock: echo } }
plans: { basic: { rules: [{ allow: "* /v1/**" }] } }
routes: [{ match: "* /v1/**", upstream: echo }]
tenants: { acme: { plan: basic, keys: [{ id: acme-key, secret: acme-secret-0001 }] } }
`);
  try {
    const get = (h: Record<string, string>) => fetch(`${plain.dataUrl}/v1/x`, { headers: h });
    expect((await get({ "x-api-key": "acme-secret-0001" })).status).toBe(200);
    const refused = await get({ authorization: `Bearer ${await sign(es, claims("partners"))}` });
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as { detail: string }).detail).toBe(
      "A valid API key is required: send it as Authorization: Bearer <key> or X-API-Key: <key>.",
    );
  } finally {
    await plain.close();
  }
});
