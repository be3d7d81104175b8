/**
 * Bearer JWTs through a running gateway, with keys made here and served by a JWKS endpoint on a free
 * loopback port. Every attack of the JWT literature gets the very 401 a wrong API key gets, and
 * nothing reaches the upstream; valid tokens are limited, metered and forwarded like keys.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { exportSPKI, importJWK } from "jose";
import { startTestGateway, type TestGateway } from "../support/gateway.ts";
import {
  hmacSigned,
  type JwksServer,
  makeKey,
  sign,
  startJwksServer,
  type TestKey,
  unsigned,
} from "../support/jwt.ts";
import { type RecordingUpstream, startUpstream } from "../support/upstream.ts";

const START = Date.parse("2030-01-15T12:00:00Z");
const NOW = START / 1000;
const ISS = "https://id.example.test/";
const AUD = "gatehouse-api";

let up: RecordingUpstream;
let jwks: JwksServer;
let gw: TestGateway;
let key1: TestKey;
let key2: TestKey;
let attacker: TestKey;

const config = (upstream: string) => `version: 1
identity:
  - apiKey: {}
  - jwt:
      name: corp
      issuer: "${ISS}"
      audience: ${AUD}
      algorithms: [RS256]
      jwks: { url: "\${JWKS_URL}", cacheFor: 10m, cooldown: 30s, timeout: 5s }
      tenantClaim: org.id
      scopeClaim: scope
      planClaim: { claim: tier, plans: { gold: premium } }
      forwardClaims: [email, org.id]
      clockSkew: 30s
      maxLifetime: 1h
upstreams:
  up: { url: "${upstream}", tenantContext: true }
plans:
  basic:
    limits: [{ limit: 3, window: 1m, by: key, name: per-subject }]
    rules:
      - allow: "GET /v1/**"
      - allow: "POST /v1/reports/**"
        scope: reports:write
  premium:
    rules: [{ allow: "* /v1/**" }]
routes:
  - { match: "* /v1/**", upstream: up }
tenants:
  acme:
    plan: basic
    externalIds: [org_acme]
    metadata: { region: eu, "tier": "café" }
    keys: [{ id: acme-key, secret: acme-secret-0001 }]
  globex:
    plan: basic
    keys: [{ id: globex-key, secret: globex-secret-0001 }]
`;

const claims = (extra: Record<string, unknown> = {}) => ({
  iss: ISS,
  aud: AUD,
  sub: "alice",
  org: { id: "org_acme" },
  iat: NOW,
  exp: NOW + 600,
  ...extra,
});

beforeAll(async () => {
  [key1, key2, attacker] = await Promise.all([makeKey("k1"), makeKey("k2"), makeKey("k1")]);
  jwks = startJwksServer([key1.publicJwk]);
  up = startUpstream();
  gw = startTestGateway(config(up.url), { testClockStart: START, env: { JWKS_URL: jwks.url } });
});
afterAll(async () => {
  await gw.close();
  await up.stop();
  await jwks.stop();
});

const call = async (headers: Record<string, string>, path = "/v1/items") => {
  const res = await fetch(`${gw.dataUrl}${path}`, { headers });
  const text = await res.text();
  return { status: res.status, text, json: text ? JSON.parse(text) : null };
};
const bearer = (token: string, path = "/v1/items") => call({ authorization: `Bearer ${token}` }, path);
const advance = async (by: string) => {
  const r = await fetch(`${gw.adminUrl}/clock`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ advance: by }),
  });
  expect(r.status).toBe(200);
};
/** The stranger's 401, request id aside: every refusal below must be exactly this. */
let stranger: Record<string, unknown>;
const withoutId = ({ request_id: _, ...rest }: Record<string, unknown>) => rest;

describe("a valid token", () => {
  test("is served as the tenant its claim names, by external id, and the token never goes upstream", async () => {
    stranger = withoutId((await call({ "x-api-key": "no-such-key-000" })).json);
    expect(stranger.status).toBe(401);
    const before = up.received.length;
    const token = await sign(key1, claims({ email: "alice@acme.test" }));
    const res = await bearer(`${token}`, `/v1/items?jwt=${token}&q=1&t=Bearer%20${token}`);
    expect(res.status).toBe(200);
    const got = up.received.at(-1)!;
    expect(up.received.length).toBe(before + 1);
    expect(got.headers["x-gatehouse-tenant"]).toBe("acme");
    expect(got.headers["x-gatehouse-key-id"]).toBe("jwt:corp:alice");
    expect(got.headers.authorization).toBeUndefined();
    // No parameter carrying a token crosses, whatever its name.
    expect(got.target).toBe("/v1/items?q=1");
    expect(JSON.stringify(got)).not.toContain(token.split(".")[2]!);
    const context = JSON.parse(got.headers["x-gatehouse-context"]!);
    expect(context).toEqual({
      tenant: "acme",
      plan: "basic",
      subject: "jwt:corp:alice",
      metadata: { region: "eu", tier: "café" },
      claims: { email: "alice@acme.test", "org.id": "org_acme" },
    });
    // ASCII on the wire: non-ASCII is escaped.
    expect(got.headers["x-gatehouse-context"]).toContain("caf\\u00e9");
  });

  test("a client-sent X-Gatehouse-Context, in any spelling, never reaches the upstream", async () => {
    const token = await sign(key1, claims());
    const res = await call({
      authorization: `Bearer ${token}`,
      "x-gatehouse-context": '{"tenant":"globex"}',
      x_gatehouse_context: '{"tenant":"globex"}',
      "x-jwt-payload": "forged",
    });
    expect(res.status).toBe(200);
    const got = up.received.at(-1)!;
    expect(JSON.parse(got.headers["x-gatehouse-context"]!).tenant).toBe("acme");
    expect(got.headers.x_gatehouse_context).toBeUndefined();
    expect(got.headers["x-jwt-payload"]).toBeUndefined();
  });

  test("a claim naming the tenant id works too; a tenant nobody has is the stranger's 401", async () => {
    expect((await bearer(await sign(key1, claims({ org: { id: "globex" } })))).status).toBe(200);
    expect(up.received.at(-1)!.headers["x-gatehouse-tenant"]).toBe("globex");
    const res = await bearer(await sign(key1, claims({ org: { id: "initech" } })));
    expect(withoutId(res.json)).toEqual(stranger);
  });

  test("per-key limits count each subject apart", async () => {
    const bob = await sign(key1, claims({ sub: "bob" }));
    const carol = await sign(key1, claims({ sub: "carol" }));
    for (let i = 0; i < 3; i++) expect((await bearer(bob)).status).toBe(200);
    expect((await bearer(bob)).status).toBe(429);
    expect((await bearer(carol)).status).toBe(200);
  });

  test("a scope claim lets rules with scope: apply; the plan claim picks a mapped plan", async () => {
    const reader = await sign(key1, claims({ sub: "r1", scope: "reports:read" }));
    const writer = await sign(key1, claims({ sub: "w1", scope: "reports:read reports:write" }));
    const post = (t: string, path: string) =>
      fetch(`${gw.dataUrl}${path}`, { method: "POST", headers: { authorization: `Bearer ${t}` } });
    expect((await post(reader, "/v1/reports/q1")).status).toBe(403);
    expect((await post(writer, "/v1/reports/q1")).status).toBe(200);
    expect((await post(writer, "/v1/items")).status).toBe(403);
    const gold = await sign(key1, claims({ sub: "g1", tier: "gold" }));
    expect((await post(gold, "/v1/items")).status).toBe(200);
    // A plan value the source does not map is refused, not silently read as the tenant's own plan.
    const platinum = await sign(key1, claims({ sub: "g2", tier: "platinum" }));
    expect(withoutId((await bearer(platinum)).json)).toEqual(stranger);
  });
});

describe("attacks get the stranger's 401 and reach nothing", () => {
  const refused = async (token: string | Promise<string>) => {
    const before = up.received.length;
    const res = await bearer(await token);
    expect(res.status).toBe(401);
    expect(withoutId(res.json)).toEqual(stranger);
    expect(up.received.length).toBe(before);
  };

  test("alg none, in any spelling, and an empty signature", async () => {
    for (const alg of ["none", "None", "NONE", "nOnE"]) {
      await refused(unsigned({ alg, kid: "k1", typ: "JWT" }, claims()));
    }
    const [h, p] = (await sign(key1, claims())).split(".");
    await refused(`${h}.${p}.`);
  });

  test("HS256 signed with the RSA public key (RS/HS confusion), as SPKI PEM and as JWK bytes", async () => {
    const pem = await exportSPKI(
      (await importJWK(key1.publicJwk, "RS256", { extractable: true })) as CryptoKey,
    );
    await refused(hmacSigned(new TextEncoder().encode(pem), claims(), { kid: "k1" }));
    await refused(hmacSigned(Buffer.from(key1.publicJwk.n!, "base64url"), claims(), { kid: "k1" }));
    await refused(hmacSigned(new TextEncoder().encode(JSON.stringify(key1.publicJwk)), claims()));
  });

  test("an algorithm the source does not list, and one nobody knows", async () => {
    const es = await makeKey("k1", "ES256");
    await refused(sign(es, claims()));
    await refused(unsigned({ alg: "RS257", kid: "k1" }, claims()));
    await refused(sign(await makeKey("k1", "PS256"), claims()));
  });

  test("a key the token carries itself (jwk, jku, x5u headers) is never used", async () => {
    await refused(sign(attacker, claims(), { jwk: attacker.publicJwk }));
    await refused(sign(attacker, claims(), { kid: undefined, jwk: attacker.publicJwk }));
    await refused(sign(attacker, claims(), { jku: `${jwks.url}?evil=1` }));
    expect(jwks.requests.some((r) => r.includes("evil"))).toBe(false);
  });

  test("exp missing; expired or not yet valid beyond the clock skew; lifetime too long", async () => {
    const { exp: _, ...noExp } = claims();
    await refused(sign(key1, noExp));
    await refused(sign(key1, claims({ exp: NOW - 31 })));
    await refused(sign(key1, claims({ nbf: NOW + 31 })));
    await refused(sign(key1, claims({ iat: NOW + 31 })));
    await refused(sign(key1, claims({ exp: NOW + 3601, iat: NOW })));
    await refused(sign(key1, claims({ exp: NOW + 3700, iat: undefined })));
    // Within the skew they pass.
    expect((await bearer(await sign(key1, claims({ sub: "s1", exp: NOW - 29 })))).status).toBe(200);
    expect((await bearer(await sign(key1, claims({ sub: "s2", nbf: NOW + 29 })))).status).toBe(200);
  });

  test("wrong issuer or audience; no subject; a tampered payload", async () => {
    await refused(sign(key1, claims({ iss: "https://evil.example/" })));
    await refused(sign(key1, claims({ iss: `${ISS}x` })));
    await refused(sign(key1, claims({ aud: "another-api" })));
    await refused(sign(key1, claims({ aud: undefined })));
    await refused(sign(key1, claims({ sub: undefined })));
    const [h, , s] = (await sign(key1, claims())).split(".");
    const forged = Buffer.from(JSON.stringify(claims({ org: { id: "globex" } }))).toString("base64url");
    await refused(`${h}.${forged}.${s}`);
  });

  test("an oversized token is refused unread", async () => {
    await refused(sign(key1, claims({ pad: "x".repeat(9000) })));
  });

  test("kid with a path, a URL or SQL is only ever a lookup: nothing fetched names it", async () => {
    const evil = [
      "../../../../etc/passwd",
      "' OR '1'='1",
      "k1; DROP TABLE tenants; --",
      "http://evil.example/k",
    ];
    for (const kid of evil) await refused(sign(key1, claims(), { kid }));
    for (const r of jwks.requests) expect(r).toBe("/.well-known/jwks.json");
  });

  test("a token only in the query string is not accepted", async () => {
    const token = await sign(key1, claims());
    for (const q of [`access_token=${token}`, `jwt=${token}`, `id_token=${token}`, `token=${token}`]) {
      const res = await call({}, `/v1/items?${q}`);
      expect(res.status).toBe(401);
    }
  });

  test("a token sent as X-API-Key is not read as a token", async () => {
    const res = await call({ "x-api-key": await sign(key1, claims()) });
    expect(withoutId(res.json)).toEqual(stranger);
  });
});

describe("keys from the identity provider", () => {
  test("rotation: a new kid is fetched at most once per cooldown, and spraying kids fetches nothing more", async () => {
    const before = jwks.requests.length;
    jwks.keys = [key1.publicJwk, key2.publicJwk];
    const rotated = await sign(key2, claims({ sub: "r-1" }));
    // The set was fetched moments ago (virtual time): within the cooldown a new kid is not fetched.
    const early = await bearer(rotated);
    expect(early.status).toBe(401);
    expect(jwks.requests.length).toBe(before);
    await advance("30s");
    expect((await bearer(rotated)).status).toBe(200);
    expect(jwks.requests.length).toBe(before + 1);
    for (let i = 0; i < 5; i++)
      expect((await bearer(await sign(key2, claims(), { kid: `spray-${i}` }))).status).toBe(401);
    expect(jwks.requests.length).toBe(before + 1);
  });

  test("while the provider is down, the last good keys keep verifying; retries wait for the cooldown", async () => {
    jwks.mode = "error";
    const before = jwks.requests.length;
    await advance("11m");
    const token = await sign(key1, claims({ sub: "down-1", iat: NOW + 660, exp: NOW + 1200 }));
    expect((await bearer(token)).status).toBe(200);
    // The stale set started one refresh, which fails; the next request does not start another.
    expect((await bearer(token)).status).toBe(200);
    expect(jwks.requests.length).toBe(before + 1);
    jwks.mode = "ok";
  });
});

describe("metering", () => {
  test("usage rows and metrics name the tenant and the subject, never the token", async () => {
    const from = START - 60_000;
    const res = await fetch(
      `${gw.adminUrl}/usage?tenant=acme&groupBy=key&from=${from}&to=${START + 3_600_000}`,
    );
    expect(res.status).toBe(200);
    const body = (await res.json()) as { groups: { group: string | null; requests: number }[] };
    const groups = new Map(body.groups.map((g) => [g.group, g.requests]));
    expect(groups.get("jwt:corp:alice")).toBeGreaterThanOrEqual(2);
    expect(groups.get("jwt:corp:bob")).toBe(4);
    const exported = await (
      await fetch(`${gw.adminUrl}/usage/export?from=${from}&to=${START + 3_600_000}`)
    ).text();
    expect(exported).toContain("jwt:corp:alice");
    expect(exported).not.toContain("eyJ");
    const metrics = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/gatehouse_requests_total\{[^}]*tenant="acme"/);
  });
});

describe("explain", () => {
  test("POST /explain takes a token and says why one is refused", async () => {
    const post = async (body: Record<string, unknown>) => {
      const r = await fetch(`${gw.adminUrl}/explain`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      expect(r.status).toBe(200);
      // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON answers
      return (await r.json()) as Record<string, any>;
    };
    const now = NOW + 700;
    const ok = await post({
      token: await sign(key1, claims({ sub: "ex", scope: "reports:write", iat: now, exp: now + 60 })),
      method: "POST",
      path: "/v1/reports/q",
    });
    expect(ok.outcome).toBe("forwarded");
    expect(ok.tenant).toEqual({ id: "acme", plan: "basic" });
    expect(ok.key).toEqual({ id: "jwt:corp:ex" });
    expect(ok.identity).toEqual({ source: "corp", named: [], scopes: ["reports:write"], outOfScope: null });
    expect(ok.rules.map((r: { pattern: string }) => r.pattern)).toEqual(["POST /v1/reports/**"]);
    const expired = await post({
      token: await sign(key1, claims({ exp: NOW })),
      method: "GET",
      path: "/v1/items",
    });
    expect(expired.refusedBy).toBe("auth");
    expect(expired.detail).toBe("The token is refused: the token has expired.");
  });
});
