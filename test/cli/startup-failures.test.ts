/**
 * Every way `gatehouse serve` can fail to start prints one line naming the value and the fix (config
 * errors: their located lines), never a stack trace, and exits with its documented code.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gatehouseCommand } from "../support/process.ts";

let dir: string;
let busy: ReturnType<typeof Bun.serve>;

// Free ports unless a case says otherwise.
const yaml = `version: 1
server: { listen: 127.0.0.1:0, admin: 127.0.0.1:0 }
upstreams: { echo: { mock: echo } }
plans: { p: { rules: [{ allow: "* /**" }] } }
routes: [{ match: "* /**", upstream: echo }]
`;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "gatehouse-startup-"));
  // Readable by the unprivileged user of the permission case.
  chmodSync(dir, 0o755);
  writeFileSync(join(dir, "gateway.yaml"), yaml);
  writeFileSync(join(dir, "not-a-db"), "this is not a SQLite database, whatever it is".repeat(20));
  mkdirSync(join(dir, "a-directory"));
  mkdirSync(join(dir, "locked"), { mode: 0o555 });
  busy = Bun.serve({ hostname: "127.0.0.1", port: 0, reusePort: false, fetch: () => new Response("") });
});
afterAll(() => {
  busy.stop(true);
  chmodSync(join(dir, "locked"), 0o755);
  rmSync(dir, { recursive: true, force: true });
});

/** Runs serve and returns once it exits. */
async function serve(args: string[], opts: { env?: Record<string, string>; asUser?: string[] } = {}) {
  const proc = Bun.spawn([...(opts.asUser ?? []), ...gatehouseCommand(), "serve", ...args], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? "", ...opts.env },
    stdout: "pipe",
    stderr: "pipe",
  });
  // No case below may start: a gateway that did would run until this kill.
  const timer = setTimeout(() => proc.kill(), 20_000);
  const code = await proc.exited;
  clearTimeout(timer);
  return {
    code,
    stderr: await new Response(proc.stderr).text(),
    stdout: await new Response(proc.stdout).text(),
  };
}

function expectOneLine(r: { stderr: string; stdout: string }, text: string | RegExp) {
  expect(r.stdout).toBe("");
  const lines = r.stderr.trimEnd().split("\n");
  expect(lines).toHaveLength(1);
  expect(r.stderr).not.toMatch(/^\s+at /m);
  if (typeof text === "string") expect(lines[0]).toBe(text);
  else expect(lines[0]).toMatch(text);
}

const cases: [string, string[], number, string | RegExp][] = [
  [
    "a port beyond 65535",
    ["--listen", "localhost:99999"],
    2,
    'gatehouse serve: --listen "localhost:99999": the port must be at most 65535 (see gatehouse serve --help)',
  ],
  [
    "an address that is not HOST:PORT",
    ["--admin", "8081"],
    2,
    'gatehouse serve: --admin "8081" is not HOST:PORT; write e.g. 127.0.0.1:8080 (see gatehouse serve --help)',
  ],
  [
    "a test-mode clock that is not a time",
    ["--test-mode", "--clock-start", "tomorrow"],
    2,
    /^gatehouse serve: --clock-start "tomorrow" is not an RFC 3339 time/,
  ],
  [
    "a database path that is a directory",
    ["--db", "a-directory"],
    4,
    'gatehouse serve: cannot open the database "a-directory" (from --db): it is a directory; give a file path, such as a-directory/gatehouse.db',
  ],
  [
    "a database in a directory that does not exist",
    ["--db", "missing/gatehouse.db"],
    4,
    /^gatehouse serve: cannot open the database "missing\/gatehouse.db" \(from --db\): the directory "missing" does not exist; create it, or choose another path/,
  ],
  [
    "a file that is not a database",
    ["--db", "not-a-db"],
    4,
    /^gatehouse serve: cannot open the database "not-a-db" \(from --db\): the file is not a SQLite database; or choose another path/,
  ],
  [
    "a control API beyond loopback without a token",
    ["--admin", "0.0.0.0:0", "--db", ":memory:"],
    3,
    "gatehouse serve: refusing to start: the control API would listen on 0.0.0.0:0 without a token; set GATEHOUSE_ADMIN_TOKEN or server.adminToken, or listen on 127.0.0.1",
  ],
];

test("bad flags, unopenable databases, an unsafe control API: one line each, and its exit code", async () => {
  // Each a process of its own, all at once.
  const results = await Promise.all(cases.map(([, args]) => serve(args)));
  cases.forEach(([what, , code, text], i) => {
    const r = results[i]!;
    expect(r.code, what).toBe(code);
    expectOneLine(r, text);
  });
});

test("an address in use: exit 4", async () => {
  const r = await serve(["--db", ":memory:", "--admin", `127.0.0.1:${busy.port}`]);
  expectOneLine(
    r,
    `gatehouse serve: cannot listen on 127.0.0.1:${busy.port} for the control API: the address is already in use ` +
      "(is another gatehouse running?); stop that process, or choose another address with --admin or server.admin",
  );
  expect(r.code).toBe(4);
});

test("a bad GATEHOUSE_* variable names the variable: exit 3", async () => {
  const r = await serve(["--db", ":memory:"], {
    env: { GATEHOUSE_DB: "x.db", GATEHOUSE_ADMIN: "[::1]:70000" },
  });
  expectOneLine(r, 'gatehouse serve: GATEHOUSE_ADMIN: "[::1]:70000": the port must be at most 65535');
  expect(r.code).toBe(3);
});

test("a missing config file: its located line and hint, exit 3", async () => {
  const r = await serve(["--config", "nowhere.yaml"]);
  expect(r.stderr).toBe(
    "nowhere.yaml:1:1: file not found\n" +
      "  hint: check the path (give it as FILE or --config FILE), or write a starter config with gatehouse init\n",
  );
  expect(r.code).toBe(3);
});

// Root may write anywhere: the permission case runs as an unprivileged user where the system has one.
// That user keeps the right to read and search (not write), so that the source tree and Bun are
// found wherever the checkout lives (a clone in a private temporary directory included).
const unprivileged =
  process.getuid?.() !== 0
    ? []
    : Bun.which("setpriv")
      ? [
          "setpriv",
          "--reuid=65534",
          "--regid=65534",
          "--clear-groups",
          "--inh-caps=+dac_read_search",
          "--ambient-caps=+dac_read_search",
        ]
      : null;
test.skipIf(unprivileged === null)("a database where this user may not write: exit 4", async () => {
  const r = await serve(["--db", "locked/gatehouse.db"], { asUser: unprivileged! });
  expectOneLine(
    r,
    /^gatehouse serve: cannot open the database "locked\/gatehouse.db" \(from --db\): this user may not create files in "locked"; fix its permissions/,
  );
  expect(r.code).toBe(4);
});
