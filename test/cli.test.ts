import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { basicConfig } from "./support/gateway.ts";
import { gatehouseCommand, startProcess } from "./support/process.ts";
import { type RecordingUpstream, startUpstream } from "./support/upstream.ts";

const root = join(import.meta.dir, "..");
let dir: string;
let up: RecordingUpstream;
let config: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "gatehouse-cli-"));
  up = startUpstream();
  config = join(dir, "gateway.yaml");
  writeFileSync(config, basicConfig(up.url));
});
afterAll(async () => {
  await up.stop();
  rmSync(dir, { recursive: true, force: true });
});

const run = (...args: string[]) =>
  Bun.spawnSync([...gatehouseCommand(), ...args], { cwd: root, env: { PATH: process.env.PATH ?? "" } });
/** Runs every command line at once (each is a process of its own): their output, in order. */
const runAll = (lines: string[][]) =>
  Promise.all(
    lines.map(async (args) => {
      const p = Bun.spawn([...gatehouseCommand(), ...args], {
        cwd: root,
        env: { PATH: process.env.PATH ?? "" },
        stdout: "pipe",
        stderr: "pipe",
      });
      const [stdout, stderr, exitCode] = await Promise.all([
        new Response(p.stdout).text(),
        new Response(p.stderr).text(),
        p.exited,
      ]);
      return { args, stdout, stderr, exitCode };
    }),
  );
const serveArgs = (listen = "127.0.0.1:0") => [
  "serve",
  "--config",
  config,
  "--db",
  ":memory:",
  "--listen",
  listen,
  "--admin",
  "127.0.0.1:0",
];

describe("commands", () => {
  test("version", () => {
    const r = run("version");
    expect(r.exitCode).toBe(0);
    expect(r.stdout.toString()).toMatch(/^gatehouse \d+\.\d+\.\d+ \(bun [\d.]+\)\n$/);
  });

  test("validate: exit 0 on the shipped config", () => {
    const r = run("validate");
    expect(r.stdout.toString()).toBe("gateway.yaml: ok (2 tenants, 2 routes)\n");
    expect(r.exitCode).toBe(0);
  });

  test("validate: exit 1 with every located error", () => {
    const r = run("validate", "--config", "fixtures/invalid/unknown-plan.yaml");
    expect(r.exitCode).toBe(1);
    expect(r.stderr.toString()).toBe(
      'fixtures/invalid/unknown-plan.yaml:10:17 tenants.acme.plan: no plan named "fre"\n  hint: did you mean "free"?\n',
    );
  });

  test("validate: interpolation, schema and reference errors together, in file order", () => {
    const r = run("validate", "fixtures/invalid/every-stage.yaml");
    expect(r.stderr.toString()).toBe(
      readFileSync(join(root, "fixtures/invalid/every-stage.expected"), "utf8"),
    );
    expect(r.exitCode).toBe(1);
  });

  test("serve: a config error stops start-up with the located error", () => {
    const r = run("serve", "--config", "fixtures/invalid/bad-duration.yaml", "--db", ":memory:");
    expect(r.exitCode).toBe(3);
    expect(r.stderr.toString()).toStartWith(
      "fixtures/invalid/bad-duration.yaml:6:35 plans.free.limits[0].window:",
    );
  });

  test("hash-key prints the form gateway.yaml accepts", () => {
    const r = run("hash-key", "gh_demo_globex_0001");
    expect(r.stdout.toString()).toBe(
      "sha256:e7f85d0d9b103761f69d68698794381672c1765a2b5bd35761f608d99c41caf1\n",
    );
  });

  test("an unknown command or flag is a usage error", () => {
    expect(run("frobnicate").exitCode).toBe(2);
    expect(run("serve", "--nope").exitCode).toBe(2);
  });

  test("--version is the version command", () => {
    const r = run("--version");
    expect(r.exitCode).toBe(0);
    expect(r.stdout.toString()).toBe(run("version").stdout.toString());
  });

  test("plain gatehouse prints help and exits with the usage code instead of serving", () => {
    const r = run();
    expect(r.exitCode).toBe(2);
    expect(r.stdout.toString()).toBe("");
    const help = r.stderr.toString();
    for (const c of ["serve", "validate", "diff", "init", "test", "export", "hash-key", "version"]) {
      expect(help).toMatch(new RegExp(`^  ${c} +\\S`, "m"));
    }
    // The exit codes and the environment overrides are documented in the help.
    expect(help).toMatch(/^ {2}4 {2}cannot start/m);
    expect(help).toContain("GATEHOUSE_ADMIN_TOKEN");
    expect(run("--help").stdout.toString()).toBe(help);
  });

  const commandFlags: Record<string, string[]> = {
    serve: ["--config", "--db", "--listen", "--admin", "--test-mode", "--clock-start"],
    validate: ["--config"],
    diff: ["--config", "--db"],
    init: ["--force"],
    test: ["--junit", "--seed", "--target", "--admin", "--admin-token"],
    export: ["--config", "--db"],
    "hash-key": [],
    version: [],
  };
  test("every command's --help describes each of its flags", async () => {
    const commands = Object.keys(commandFlags);
    const results = await runAll(
      commands.flatMap((c) => [
        [c, "--help"],
        ["help", c],
      ]),
    );
    commands.forEach((command, i) => {
      const [r, viaHelp] = [results[2 * i]!, results[2 * i + 1]!];
      expect(r.exitCode).toBe(0);
      const help = r.stdout;
      expect(help).toStartWith(`usage: gatehouse ${command}`);
      for (const flag of [...commandFlags[command]!, "--help"]) {
        // The flag's line has a description after it.
        expect(help).toMatch(new RegExp(`^ +(-\\w, )?${flag}( \\S+)? {2,}\\w`, "m"));
      }
      expect(help.match(/^ +(-\w, )?--[\w-]+/gm)?.length).toBe(commandFlags[command]!.length + 1);
      expect(viaHelp.stdout).toBe(help);
    });
  });

  test("unknown commands, flags and extra arguments are usage errors, on one line, with a did-you-mean", async () => {
    const cases: [string[], string][] = [
      [["serv"], 'gatehouse: unknown command "serv"; did you mean serve?'],
      [["serve", "--conifg", "x.yaml"], "gatehouse serve: unknown flag --conifg; did you mean --config?"],
      [["validate", "--db", "x.db"], "gatehouse validate: unknown flag --db"],
      [
        ["serve", "a.yaml", "b.yaml"],
        'gatehouse serve: unexpected argument "b.yaml"; serve takes at most one: [FILE]',
      ],
      [["serve", "--config", "a.yaml", "b.yaml"], "gatehouse serve: the config file is given twice"],
      [["version", "now"], 'gatehouse version: unexpected argument "now"; version takes no arguments'],
      [["diff", "test-mode", "force"], 'gatehouse diff: unexpected argument "force"'],
      [
        ["init", "a.yaml", "forse"],
        'gatehouse init: unexpected argument "forse"; init takes at most one: [FILE]; did you mean --force?',
      ],
      [["serve", "--listen"], "gatehouse serve: --listen needs a value (HOST:PORT"],
      [["serve", "--test-mode=yes"], "gatehouse serve: --test-mode takes no value"],
      [["serve", "--db", "a.db", "--db", "b.db"], "gatehouse serve: --db is given twice"],
      [["test"], "gatehouse test: missing FILE..."],
    ];
    const results = await runAll(cases.map(([args]) => args));
    cases.forEach(([args, message], i) => {
      const r = results[i]!;
      expect(r.stderr, args.join(" ")).toStartWith(message);
      expect(r.exitCode).toBe(2);
      expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
      expect(r.stderr).toContain(`(see gatehouse${args[0] === "serv" ? "" : ` ${args[0]}`} --help)`);
    });
  });
});

describe("a config file given as an argument", () => {
  test("validate checks the file it is given", () => {
    const r = run("validate", "fixtures/invalid/unknown-plan.yaml");
    expect(r.exitCode).toBe(1);
    expect(r.stderr.toString()).toStartWith("fixtures/invalid/unknown-plan.yaml:10:17 tenants.acme.plan:");
    const ok = run("validate", config);
    expect(ok.stdout.toString()).toBe(`${config}: ok (2 tenants, 2 routes)\n`);
  });

  test("serve serves the file it is given", async () => {
    const gh = await startProcess(gatehouseCommand(), ["serve", config, ...serveArgs().slice(3)]);
    try {
      // Only the given file declares this key and the /echo route: the shipped gateway.yaml does not.
      const res = await fetch(`${gh.dataUrl}/echo/x`, { headers: { "x-api-key": "acme-secret-0001" } });
      expect(res.status).toBe(200);
    } finally {
      gh.proc.kill("SIGTERM");
      await gh.proc.exited;
    }
  });
});

describe("lifecycle", () => {
  test("SIGTERM lets in-flight requests finish, then exits 0", async () => {
    const { promise: arrived, resolve } = Promise.withResolvers<void>();
    const { promise: release, resolve: letGo } = Promise.withResolvers<void>();
    up.on("/v1/slow", async () => {
      resolve();
      await release;
      return new Response("finished");
    });
    const gh = await startProcess(gatehouseCommand(), serveArgs());
    const inflight = fetch(`${gh.dataUrl}/v1/slow`, { headers: { "x-api-key": "acme-secret-0001" } });
    await arrived;
    gh.proc.kill("SIGTERM");
    await gh.waitFor('"msg":"draining"');
    // The listener closes at once: new connections are refused while the old request drains.
    await expect(
      fetch(`${gh.dataUrl}/v1/items`, { headers: { "x-api-key": "acme-secret-0001" } }),
    ).rejects.toThrow();
    letGo();
    const res = await inflight;
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("finished");
    expect(await gh.proc.exited).toBe(0);
    expect(gh.stderr()).toContain('"msg":"stopped"');
  });

  test("SIGINT exits 0 too", async () => {
    const gh = await startProcess(gatehouseCommand(), serveArgs());
    gh.proc.kill("SIGINT");
    expect(await gh.proc.exited).toBe(0);
  });

  test("a second instance on the same port fails with a clear message instead of sharing it", async () => {
    const first = await startProcess(gatehouseCommand(), serveArgs());
    try {
      const port = new URL(first.dataUrl).port;
      const second = Bun.spawnSync([...gatehouseCommand(), ...serveArgs(`127.0.0.1:${port}`)], {
        env: { PATH: process.env.PATH ?? "" },
      });
      expect(second.exitCode).toBe(4);
      expect(second.stderr.toString()).toBe(
        `gatehouse serve: cannot listen on 127.0.0.1:${port} for the data plane: the address is already in use ` +
          "(is another gatehouse running?); stop that process, or choose another address with --listen or server.listen\n",
      );
      // The first instance still answers every request.
      const res = await fetch(`${first.dataUrl}/v1/items`, { headers: { "x-api-key": "acme-secret-0001" } });
      expect(res.status).toBe(200);
    } finally {
      first.proc.kill("SIGTERM");
      await first.proc.exited;
    }
  });
});
