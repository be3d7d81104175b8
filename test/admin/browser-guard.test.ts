/**
 * What a web page can do to the control API: DNS rebinding (a foreign Host), cross-site writes
 * (Origin, Sec-Fetch-Site) and bodies a browser sends without a preflight (non-JSON types).
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { prng } from "../../src/lib/prng.ts";
import {
  type AdminFixture,
  adminFixture,
  dumpState,
  expectProblem,
  TOKEN,
  withoutRequestId,
} from "./helpers.ts";

/** Tokenless, as with the shipped gateway.yaml: loopback is the only protection. */
let open: AdminFixture;
beforeEach(() => {
  open = adminFixture(undefined, { token: null });
});
afterEach(() => open.close());

const tenantIds = async (f: AdminFixture) =>
  (await f.call("GET", "/tenants", { token: null })).json.items.map((t: { id: string }) => t.id);

const LOOPBACK_HOSTS = [
  "localhost",
  "localhost:8081",
  "LocalHost:1",
  "127.0.0.1",
  "127.0.0.1:8081",
  "127.1.2.3:65535",
  "127.255.255.255",
  "[::1]",
  "[::1]:8081",
];

/** Well-formed names that are not the listener's (or not in the canonical form a browser sends). */
const FOREIGN_HOSTS = [
  "attacker.example",
  "attacker.example:8081",
  "localhost.attacker.example",
  "localhost-attacker.example",
  "127.0.0.1.nip.io",
  "localhost.",
  "localhost.:8081",
  "0.0.0.0",
  "10.0.0.1",
  "192.168.1.10:8081",
  "128.0.0.1",
  "127.1",
  "127.0.0.01",
  "127.0.0.256",
  "2130706433",
  "0x7f.0.0.1",
  "[::2]",
  "[::ffff:127.0.0.1]",
  "[0:0:0:0:0:0:0:1]",
  "xn--lcalhost-2we",
  "gatehouse.internal",
];

/** Host values that are not one well-formed host: refused before anything else looks at them. */
const MALFORMED_HOSTS = [
  "",
  "user@localhost",
  "localhost@attacker.example",
  "attacker.example@localhost",
  "localhost, attacker.example",
  "attacker.example, localhost",
  "localhost/evil",
  "localhost:",
  "localhost:99999",
  "localhost:8081:1",
  "local%68ost",
  "local host",
  "[::1",
  "::1",
  "localhost\u00e9",
  "http://localhost",
];

describe("Host: a tokenless listener serves only requests addressed to its own names", () => {
  test("the DNS-rebinding reproduction is refused and creates nothing", async () => {
    const before = dumpState(open);
    const r = await open.call("POST", "/tenants", {
      token: null,
      headers: { host: "attacker.example", "content-type": "text/plain" },
      raw: '{"id":"pwned","plan":"free"}',
    });
    expectProblem(r, 421);
    expect(dumpState(open)).toBe(before);
    expect(await tenantIds(open)).not.toContain("pwned");
  });

  test("localhost, 127.x.x.x and [::1] are served, with any port or none, in any case", async () => {
    for (const host of LOOPBACK_HOSTS) {
      expect((await open.call("GET", "/tenants", { token: null, headers: { host } })).status, host).toBe(200);
    }
    const created = await open.call("POST", "/tenants", {
      token: null,
      headers: { host: "[::1]:8081" },
      body: { id: "made-locally", plan: "free" },
    });
    expect(created.status).toBe(201);
  });

  test("every other name gets one 421 body whatever the path, method or token", async () => {
    const paths = ["/tenants", "/usage/export", "/openapi.json", "/docs", "/no/such/route", "/config/reload"];
    const bodies = new Set<string>();
    for (const host of FOREIGN_HOSTS) {
      for (const path of paths) {
        for (const method of ["GET", "POST", "DELETE"]) {
          const r = await open.call(method, path, { token: null, headers: { host } });
          expectProblem(r, 421);
          bodies.add(withoutRequestId(r.json));
        }
      }
    }
    expect(bodies.size).toBe(1);
    expect([...bodies][0]).not.toContain("attacker");
  });

  test("a missing, repeated or malformed Host is a 400, the same body every time", async () => {
    const bodies = new Set<string>();
    for (const host of MALFORMED_HOSTS) {
      const r = await open.call("GET", "/tenants", { token: null, headers: { host } });
      expectProblem(r, 400);
      bodies.add(withoutRequestId(r.json));
    }
    expect(bodies.size).toBe(1);
  });

  test("GET /healthz answers whatever the Host, and says only ok", async () => {
    for (const host of ["attacker.example", "10.0.0.7:8081"]) {
      const r = await open.call("GET", "/healthz", { token: null, headers: { host } });
      expect(r.status).toBe(200);
      expect(r.json).toEqual({ status: "ok" });
    }
    // Only GET: a write to it is judged like any other request.
    expectProblem(
      await open.call("POST", "/healthz", { token: null, headers: { host: "attacker.example" } }),
      421,
    );
  });

  test("names listed in server.adminHosts are served too, in the form a browser sends", async () => {
    const listed = adminFixture(undefined, {
      token: null,
      hosts: ["Gatehouse.Internal", "[FD00:0::5]", "10.1"],
    });
    try {
      for (const host of [
        "gatehouse.internal",
        "GATEHOUSE.internal:8081",
        "[fd00::5]:8081",
        "10.0.0.1",
        "localhost",
      ]) {
        expect((await listed.call("GET", "/tenants", { token: null, headers: { host } })).status, host).toBe(
          200,
        );
      }
      for (const host of ["internal", "gatehouse.internal.attacker.example", "gatehouse.internal.", "10.1"]) {
        expectProblem(await listed.call("GET", "/tenants", { token: null, headers: { host } }), 421);
      }
    } finally {
      listed.close();
    }
  });

  test("with a token the Host is not checked, unless adminHosts lists names", async () => {
    const tokened = adminFixture();
    const strict = adminFixture(undefined, { hosts: ["gatehouse.internal"] });
    try {
      // A token-protected listener on 0.0.0.0 keeps answering whatever name it is reached by.
      expect((await tokened.call("GET", "/tenants", { headers: { host: "10.0.0.7:8081" } })).status).toBe(
        200,
      );
      expectProblem(
        await tokened.call("GET", "/tenants", { token: null, headers: { host: "attacker.example" } }),
        401,
      );
      expect((await strict.call("GET", "/tenants", { headers: { host: "gatehouse.internal" } })).status).toBe(
        200,
      );
      expectProblem(await strict.call("GET", "/tenants", { headers: { host: "10.0.0.7:8081" } }), 421);
      expectProblem(await strict.call("GET", "/tenants", { headers: { host: "localhost.:8081" } }), 421);
    } finally {
      tokened.close();
      strict.close();
    }
  });

  test("property: of many Host variants, exactly those naming the listener are served", async () => {
    const random = prng(20250131);
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)]!;
    const randomCase = (s: string) =>
      [...s].map((c) => (random() < 0.5 ? c.toUpperCase() : c.toLowerCase())).join("");
    // Each mutation says whether the result still names the listener (given that its input did).
    const addPort = (h: string) => `${h}:${Math.floor(random() * 65536)}`;
    const mutations: [(h: string) => string, boolean][] = [
      [(h) => randomCase(h), true],
      [addPort, true],
      [(h) => `${h}.`, false],
      [(h) => `${h}:${65536 + Math.floor(random() * 30000)}`, false],
      [(h) => `${pick(["user", "localhost", "127.0.0.1", "a:b"])}@${h}`, false],
      [(h) => `${h}@${pick(["attacker.example", "localhost"])}`, false],
      [(h) => `${h}.${pick(["attacker.example", "nip.io", "localhost"])}`, false],
      [(h) => `${pick(["attacker", "www", "x"])}.${h}`, false],
      [(h) => `${h}${pick([",", ", ", " "])}${pick(["attacker.example", "localhost"])}`, false],
      [(h) => `${h}${pick(["/", "\\", "?", "#", "%2e"])}`, false],
      [(h) => h.replace(/[a-z0-9]/i, (c) => `%${c.charCodeAt(0).toString(16)}`), false],
      [(h) => `${h}${pick(["\u00e9", "\u00a0", "\u00ff"])}`, false],
    ];
    const withoutPort = (h: string) => !/:\d+$/.test(h);
    const ours = LOOPBACK_HOSTS.filter(withoutPort);
    const foreign = FOREIGN_HOSTS.filter(withoutPort);
    let served = 0;
    for (let i = 0; i < 1500; i++) {
      let names = random() < 0.5;
      let host = pick(names ? ours : foreign);
      let hasPort = false;
      for (let n = Math.floor(random() * 3); n > 0; n--) {
        const [mutate, keeps] = pick(mutations);
        // A second port makes any name malformed.
        names = names && keeps && !(mutate === addPort && hasPort);
        hasPort ||= mutate === addPort;
        host = mutate(host);
      }
      const r = await open.call("GET", "/tenants", { token: null, headers: { host } });
      if (names) {
        expect(r.status, host).toBe(200);
        served++;
      } else {
        expect([400, 421], host).toContain(r.status);
      }
    }
    // The generator exercises both sides.
    expect(served).toBeGreaterThan(100);
    expect(served).toBeLessThan(1400);
  });
});

describe("cross-site browser requests cannot change anything", () => {
  let tokened: AdminFixture;
  beforeEach(() => {
    tokened = adminFixture();
  });
  afterEach(() => tokened.close());

  const same = "http://localhost";
  const refusedHeaders: Record<string, string>[] = [
    { origin: "http://attacker.example" },
    { origin: "null" },
    { origin: "http://localhost:9999" },
    { origin: "https://localhost" },
    { origin: "http://127.0.0.1" },
    { "sec-fetch-site": "cross-site" },
    { "sec-fetch-site": "same-site" },
    { "sec-fetch-site": "cross-site", origin: same },
  ];

  for (const [name, fixture] of [
    ["tokenless", () => open],
    ["token-protected", () => tokened],
  ] as const) {
    test(`POST, PATCH, DELETE and OPTIONS from another site are refused (${name})`, async () => {
      const f = fixture();
      expect(
        (
          await f.call("POST", "/tenants", {
            body: { id: "victim", plan: "free" },
            headers: { origin: same },
          })
        ).status,
      ).toBe(201);
      const before = dumpState(f);
      for (const headers of refusedHeaders) {
        const attempts: [string, string, unknown][] = [
          ["POST", "/tenants", { id: "pwned", plan: "free" }],
          ["PATCH", "/tenants/victim", { plan: "premium" }],
          ["DELETE", "/tenants/victim", undefined],
          ["POST", "/tenants/victim/keys", {}],
          ["POST", "/config/reload", undefined],
          ["OPTIONS", "/tenants", undefined],
        ];
        for (const [method, path, body] of attempts) {
          const r = await f.call(method, path, { body, headers });
          expectProblem(r, 403);
          // No CORS: nothing in the answer invites a browser to read it or to send more.
          expect([...r.headers.keys()].filter((k) => k.startsWith("access-control-"))).toEqual([]);
        }
      }
      expect(dumpState(f)).toBe(before);
    });
  }

  test("same-origin pages and non-browser clients may change things", async () => {
    const allowed: Record<string, string>[] = [
      {},
      { origin: same },
      { "sec-fetch-site": "same-origin", origin: same },
      { "sec-fetch-site": "none" },
    ];
    for (const [i, headers] of allowed.entries()) {
      const r = await open.call("POST", "/tenants", {
        token: null,
        body: { id: `ok-${i}`, plan: "free" },
        headers,
      });
      expect(r.status).toBe(201);
    }
    const viaPort = await open.call("PATCH", "/tenants/ok-0", {
      token: null,
      body: { plan: "premium" },
      headers: { host: "127.0.0.1:8081", origin: "http://127.0.0.1:8081" },
    });
    expect(viaPort.status).toBe(200);
  });

  test("reads from another site are answered, without CORS headers that would let the page read them", async () => {
    const r = await open.call("GET", "/tenants", {
      token: null,
      headers: { origin: "http://attacker.example", "sec-fetch-site": "cross-site" },
    });
    expect(r.status).toBe(200);
    expect([...r.headers.keys()].filter((k) => k.startsWith("access-control-"))).toEqual([]);
  });
});

describe("request bodies must be application/json", () => {
  test("text/plain, form, multipart and untyped bodies get 415 before anything parses them", async () => {
    const before = dumpState(open);
    const attempts: [Record<string, string>, boolean][] = [
      [{ "content-type": "text/plain" }, false],
      [{ "content-type": "text/plain;charset=UTF-8" }, false],
      [{ "content-type": "text/plain; application/json" }, false],
      [{ "content-type": "application/x-www-form-urlencoded" }, false],
      [{ "content-type": "multipart/form-data; boundary=x" }, false],
      [{ "content-type": "application/jsonx" }, false],
      [{ "content-type": "application/json, text/plain" }, false],
      [{}, true],
    ];
    for (const [headers, untyped] of attempts) {
      for (const [method, path] of [
        ["POST", "/tenants"],
        ["PATCH", "/tenants/acme"],
        ["POST", "/config/reload"],
        ["GET", "/tenants"],
      ]) {
        const r = await open.call(method!, path!, {
          token: null,
          raw: '{"id":"pwned","plan":"free"}',
          headers,
          untyped,
        });
        expectProblem(r, 415);
      }
    }
    expect(dumpState(open)).toBe(before);
    expect(await tenantIds(open)).not.toContain("pwned");
  });

  test("application/json with parameters, in any case, is read", async () => {
    for (const [i, type] of [
      "application/json",
      "application/json; charset=utf-8",
      "Application/JSON;charset=UTF-8",
    ].entries()) {
      const r = await open.call("POST", "/tenants", {
        token: null,
        body: { id: `json-${i}`, plan: "free" },
        headers: { "content-type": type },
      });
      expect(r.status, type).toBe(201);
    }
  });

  test("requests without a body need no content type", async () => {
    const made = await open.call("POST", "/tenants/acme/keys", { token: null, body: {} });
    expect(made.status).toBe(201);
    const keyId = made.json.key.id;
    expect((await open.call("POST", `/keys/${keyId}/rotate`, { token: null })).status).toBe(200);
    expect((await open.call("POST", "/config/reload", { token: null })).status).toBe(200);
    const empty = await open.call("POST", "/config/reload", {
      token: null,
      headers: { "content-type": "text/plain", "content-length": "0" },
    });
    expect(empty.status).toBe(200);
  });

  test("with a token, a wrong type is refused too", async () => {
    const f = adminFixture();
    try {
      const r = await f.call("POST", "/tenants", {
        raw: '{"id":"x","plan":"free"}',
        headers: { "content-type": "text/plain" },
      });
      expectProblem(r, 415);
      expect((await f.call("GET", "/tenants", { token: TOKEN })).json.items).toHaveLength(2);
    } finally {
      f.close();
    }
  });
});
