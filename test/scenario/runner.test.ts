/** `gatehouse test`: its reports, JUnit, exit codes, --target runs and seeds. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Glob } from "bun";
import { runTestCommand } from "../../src/cli/test.ts";
import { startTestGateway, type TestGateway } from "../support/gateway.ts";
import { gatehouseCommand } from "../support/process.ts";

const root = join(import.meta.dir, "../..");
const fixture = (name: string) => join(root, "fixtures/scenarios", name);

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "gatehouse-runner-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function runCli(args: string[]) {
  const r = Bun.spawnSync([...gatehouseCommand(), "test", ...args], { cwd: root });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}

describe("the command", () => {
  test("every example passes: exit 0, one testsuite per scenario and one testcase per step", () => {
    const examples = [...new Glob("examples/scenarios/*.yaml").scanSync(root)].sort();
    expect(examples.length).toBeGreaterThanOrEqual(5);
    const junit = join(dir, "examples.xml");
    const r = runCli([...examples, "--junit", junit, "--seed", "1"]);
    expect(r.err).toBe("");
    expect(r.out.trimEnd().split("\n").at(-1)).toBe(`${examples.length} passed, 0 failed`);
    expect(r.code).toBe(0);
    const xml = readFileSync(junit, "utf8");
    expect(xml.match(/<testsuite /g)?.length).toBe(examples.length);
    const steps = examples.reduce(
      (n, f) => n + (readFileSync(join(root, f), "utf8").match(/^ {2}- /gm)?.length ?? 0),
      0,
    );
    expect(xml.match(/<testcase /g)?.length).toBe(steps);
    expect(xml).toContain(`tests="${steps}" failures="0" errors="0" skipped="0"`);
    expect(xml).not.toContain("<failure");
  });

  test("the README's scenario passes, as printed, beside the examples' config", () => {
    const readme = readFileSync(join(root, "README.md"), "utf8");
    const start = readme.indexOf("# yaml-language-server: $schema=../../scenario.schema.json\nname:");
    expect(start).toBeGreaterThan(0);
    const scenario = readme.slice(start, readme.indexOf("```", start));
    // Its `config: ../gateway.yaml` is the examples' config, as for the files in examples/scenarios.
    const file = join(root, "examples/scenarios", `.readme-${process.pid}.yaml`);
    writeFileSync(file, scenario);
    try {
      const r = runCli([file, "--seed", "1"]);
      expect(r.out.trimEnd().split("\n").at(-1)).toBe("1 passed, 0 failed");
      expect(r.code).toBe(0);
    } finally {
      rmSync(file, { force: true });
    }
  });

  test("failing and invalid scenarios: exit 1, a diff per failed expectation, and JUnit that says so", () => {
    const junit = join(dir, "failing.xml");
    const r = runCli([
      fixture("passing.yaml"),
      fixture("failing.yaml"),
      fixture("invalid.yaml"),
      "--junit",
      junit,
      "--seed",
      "3",
    ]);
    expect(r.code).toBe(1);
    const lines = r.out.trimEnd().split("\n");
    expect(lines.at(-1)).toBe("1 passed, 2 failed");
    expect(lines[0]).toBe("gatehouse test: 3 scenarios, seed 3");
    // The failed step is located, and each expectation that failed has its own line.
    expect(r.out).toContain("✗ step 2: request GET /v1/a as acme-dev: every kind of mismatch at once (");
    expect(r.out).toContain("failing.yaml:15:5)");
    for (const diff of [
      "status: expected 200, got 429",
      'problem: expected "urn:gatehouse:problem:quota-exhausted", got "urn:gatehouse:problem:rate-limited"',
      'header retry-after: expected "7", got "63"',
      "header x-request-id: expected (absent), got",
      'json.detail: expected "no such thing", got "Rate limit',
      "upstream.received: expected true, got false",
    ]) {
      expect(r.out).toContain(diff);
    }
    expect(r.out).toContain(
      "- step 3: advance the clock 1m: never reached (skipped: an earlier step failed)",
    );
    expect(r.out).toContain('invalid.yaml:4:5 steps[0]: expected one of the keys "request" or "await"');
    expect(r.out).toContain('hint: did you mean "request"?');

    const xml = readFileSync(junit, "utf8");
    expect(xml).toContain('tests="5" failures="1" errors="1" skipped="1"');
    expect(xml).toMatch(
      /<testsuite name="expectations that do not hold" file="[^"]*failing.yaml" tests="3" failures="1" errors="0" skipped="1"/,
    );
    expect(xml).toContain('<failure message="status: expected 200, got 429" type="expectation">');
    expect(xml).toContain('<skipped message="an earlier step failed"/>');
    expect(xml).toMatch(/<testcase name="load and start"[^>]*>\s*<error message="[^"]*invalid.yaml:4:5/);
  });

  test("usage errors exit 2", () => {
    expect(runCli([]).code).toBe(2);
    expect(runCli([fixture("passing.yaml"), "--seed", "x"]).code).toBe(2);
    expect(runCli([fixture("passing.yaml"), "--target", "http://127.0.0.1:1"]).code).toBe(2);
  });
});

describe("against a running gatehouse (--target)", () => {
  let gw: TestGateway;
  beforeAll(() => {
    gw = startTestGateway(readFileSync(join(root, "examples/gateway.yaml"), "utf8"), {
      testClockStart: Date.parse("2030-01-10T12:00:09Z"),
    });
  });
  afterAll(() => gw.close());

  const write = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  test("the same steps run over HTTP, clock moves included", async () => {
    const file = write(
      "remote.yaml",
      `name: remote
config: ${join(root, "examples/gateway.yaml")}
secrets: { acme-dev: demo-acme-0001 }
steps:
  - request: { as: acme-dev, path: /v1/items, repeat: 5 }
    expect: { status: 200 }
  - request: { as: acme-dev, path: /v1/items }
    expect: { status: 429, headers: { retry-after: "11" } }
  - advance: 11s
  - request: { as: acme-dev, path: /v1/items }
    expect: { status: 200 }
`,
    );
    const r = await runTestCommand({ files: [file], seed: 1, target: gw.dataUrl, admin: gw.adminUrl });
    expect(r.report).toContain("1 passed, 0 failed");
    expect(r.ok).toBe(true);
  });

  test("what only an in-process run can know is a failure that says so", async () => {
    const file = write(
      "remote-upstream.yaml",
      `name: remote upstream
config: ${join(root, "examples/gateway.yaml")}
secrets: { globex-dev: demo-globex-0001 }
steps:
  - request: { as: globex-dev, path: /v1/items }
    expect: { upstream: { received: true } }
`,
    );
    const r = await runTestCommand({ files: [file], seed: 1, target: gw.dataUrl, admin: gw.adminUrl });
    expect(r.ok).toBe(false);
    expect(r.report).toContain("run the scenario in-process, not against --target");
  });
});

test("the seed makes jitter reproducible", async () => {
  const file = join(dir, "jitter.yaml");
  // The clock after 4 jittered gaps of 1 s ± 500 ms depends on the seed alone.
  const scenario = (now: string) => `name: jitter
gateway:
  version: 1
  upstreams: { echo: { mock: echo } }
  plans: { free: { rules: [{ allow: "GET /v1/**" }] } }
  routes: [{ match: "* /v1/**", upstream: echo }]
  tenants: { acme: { plan: free, keys: [{ id: acme-dev, secret: demo-secret-0001 }] } }
clock: 2030-01-01T00:00:00Z
steps:
  - request: { as: acme-dev, path: /v1/a, repeat: 5, every: 1s, jitter: 500ms }
  - admin: { path: /clock }
    expect: { json: { now: "${now}" } }
`;
  writeFileSync(file, scenario("unknown"));
  const first = await runTestCommand({ files: [file], seed: 42 });
  const now = /json\.now: expected "unknown", got "([^"]+)"/.exec(first.report)?.[1];
  expect(now).toBeDefined();
  expect(now).not.toBe("2030-01-01T00:00:04.000Z");
  writeFileSync(file, scenario(now!));
  expect((await runTestCommand({ files: [file], seed: 42 })).ok).toBe(true);
  expect((await runTestCommand({ files: [file], seed: 43 })).ok).toBe(false);
});

test("reload steps replace the config: a good one takes effect, a bad one is refused and changes nothing", async () => {
  const gateway = (limit: number) => `version: 1
upstreams: { echo: { mock: echo } }
plans: { free: { limits: [{ limit: ${limit}, window: 1m, name: burst }], rules: [{ allow: "GET /v1/**" }] } }
routes: [{ match: "* /v1/**", upstream: echo }]
tenants: { acme: { plan: free, keys: [{ id: acme-dev, secret: demo-secret-0001 }] } }
`;
  writeFileSync(join(dir, "one.yaml"), gateway(1));
  writeFileSync(join(dir, "three.yaml"), gateway(3));
  writeFileSync(join(dir, "broken.yaml"), gateway(3).replace("window: 1m", "window: 1 minute"));
  const file = join(dir, "reload.yaml");
  writeFileSync(
    file,
    `name: reloads
config: one.yaml
steps:
  - request: { as: acme-dev, path: /v1/a }
    expect: { status: 200 }
  - request: { as: acme-dev, path: /v1/a }
    expect: { status: 429 }
  - reload: { config: three.yaml }
  - request: { as: acme-dev, path: /v1/a, repeat: 2 }
    expect: { status: 200, headers: { ratelimit-policy: { contains: "q=3" } } }
  - reload: { config: broken.yaml }
    expect: { status: 422, problem: config-invalid, text: { contains: "plans.free.limits[0].window" } }
  - request: { as: acme-dev, path: /v1/a }
    expect: { status: 429, headers: { ratelimit-policy: { contains: "q=3" } } }
`,
  );
  const r = await runTestCommand({ files: [file], seed: 1 });
  expect(r.report).toContain("1 passed, 0 failed");
});
