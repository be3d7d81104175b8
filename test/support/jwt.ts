/** Keys made in the test, tokens signed with them, and a JWKS endpoint on a free loopback port. */
import type { Server } from "bun";
import { exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from "jose";

export interface TestKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

export async function makeKey(kid: string, alg = "RS256"): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
  return { kid, alg, privateKey, publicJwk };
}

/** Signs `claims` with `key`; `header` overrides the protected header (kid and alg by default). */
export function sign(
  key: TestKey,
  claims: JWTPayload,
  header: Record<string, unknown> = {},
): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "JWT", ...header } as { alg: string })
    .sign(key.privateKey);
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");

/** A token with any header and claims, signed by nobody (`alg: none` and kin). */
export const unsigned = (header: Record<string, unknown>, claims: JWTPayload) =>
  `${b64(header)}.${b64(claims)}.`;

/** An HS256 token whose HMAC secret is `secret`: the RS/HS confusion attack when that is a public key. */
export async function hmacSigned(
  secret: Uint8Array,
  claims: JWTPayload,
  header: Record<string, unknown> = {},
) {
  const head = b64({ alg: "HS256", typ: "JWT", ...header });
  const body = b64(claims);
  const mac = new Bun.CryptoHasher("sha256", secret).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${mac}`;
}

export interface JwksServer {
  readonly url: string;
  /** Requests received, by path and query as sent. */
  readonly requests: string[];
  keys: JWK[];
  /** ok: serve the keys; error: 500; hang: never answer. */
  mode: "ok" | "error" | "hang";
  stop(): Promise<void>;
}

export function startJwksServer(keys: JWK[]): JwksServer {
  const state: { keys: JWK[]; mode: JwksServer["mode"] } = { keys, mode: "ok" };
  const requests: string[] = [];
  const server: Server<undefined> = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    fetch(req) {
      const u = new URL(req.url);
      requests.push(u.pathname + u.search);
      if (state.mode === "error") return new Response("down", { status: 500 });
      if (state.mode === "hang") return new Promise<Response>(() => {});
      return Response.json({ keys: state.keys });
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}/.well-known/jwks.json`,
    requests,
    get keys() {
      return state.keys;
    },
    set keys(k) {
      state.keys = k;
    },
    get mode() {
      return state.mode;
    },
    set mode(m) {
      state.mode = m;
    },
    stop: () => server.stop(true),
  };
}
