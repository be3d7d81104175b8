/**
 * Runs scenarios: each on a fresh gateway (test mode, in-memory database, frozen clock, built-in
 * upstreams) unless given a --target, its steps in order, stopping at the first failed step.
 *
 * A request waiting on the clock (a mock's delay, a hung upstream, a stalled body) would wait
 * forever on a frozen clock. In-process, the runner knows when every request it has in flight is
 * waiting so — nothing else could answer them — and then moves the clock to the next timer of a
 * request in flight, as Temporal's time-skipping test server does; the report says so. Against a
 * --target, the scenario moves the clock itself (send such requests in the background, then advance).
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { stringify } from "yaml";
import { ConfigError } from "../config/errors.ts";
import type { Env } from "../config/interpolate.ts";
import { parseConfig } from "../config/load.ts";
import { formatDuration, parseDuration } from "../config/units.ts";
import type { Log } from "../lib/log.ts";
import { prng } from "../lib/prng.ts";
import { checkAdmin, checkResponse, checkUsage, type Failure, type Observed, show } from "./match.ts";
import { DEFAULT_CLOCK, type RequestStep, type Scenario, type Step } from "./schema.ts";
import { remoteTarget, startInProcessTarget, type Target } from "./target.ts";

export type StepStatus = "passed" | "failed" | "skipped";

export interface StepResult {
  readonly index: number;
  /** "request GET /v1/items as acme-dev" */
  readonly title: string;
  readonly line: number;
  readonly col: number;
  status: StepStatus;
  failures: Failure[];
  /** E.g. "the clock skipped 30s to 2027-01-01T00:00:30.000Z". */
  notes: string[];
  /** Real time the step took. */
  ms: number;
}

export interface ScenarioResult {
  readonly file: string;
  readonly name: string;
  /** Set when the scenario could not run at all (an invalid file or config). */
  readonly error?: string;
  readonly steps: StepResult[];
  readonly passed: boolean;
  readonly ms: number;
}

export interface RunOptions {
  seed: number;
  /** Run against this gatehouse instead of a fresh one per scenario. */
  target?: { dataUrl: string; adminUrl: string; adminToken: string | null };
  env?: Env;
  /** The in-process gateways' log; warnings and errors are kept for failed steps either way. */
  log?: Log;
  /** Real time a step may wait for an answer before it fails. */
  stepTimeoutMs?: number;
  /** Real time, injectable for the runner's own tests. */
  now?: () => number;
}

interface LoadedLike {
  file: string;
  scenario: Scenario;
  at(path: readonly (string | number)[]): { line: number; col: number };
}

type Secrets = Map<string, { current: string; previous?: string }>;

const POLL_MS = 1;

export async function runScenario(loaded: LoadedLike, o: RunOptions): Promise<ScenarioResult> {
  const now = o.now ?? (() => performance.now());
  const started = now();
  const { scenario, file } = loaded;
  const env: Env = { ...(o.env ?? process.env), ...scenario.env };
  const steps: StepResult[] = scenario.steps.map((step, index) => {
    const pos = loaded.at(["steps", index]);
    return { index, title: titleOf(step), ...pos, status: "skipped", failures: [], notes: [], ms: 0 };
  });
  const result = (error?: string): ScenarioResult => ({
    file,
    name: scenario.name,
    ...(error === undefined ? {} : { error }),
    steps,
    passed: error === undefined && steps.every((s) => s.status === "passed"),
    ms: now() - started,
  });

  const warnings: string[] = [];
  const log: Log = (level, msg, fields) => {
    if (level === "warn" || level === "error")
      warnings.push(`${level}: ${msg}${fields ? ` ${JSON.stringify(fields)}` : ""}`);
    o.log?.(level, msg, fields);
  };
  let target: Target;
  const secrets: Secrets = new Map();
  try {
    if (o.target) {
      target = remoteTarget(o.target.dataUrl, o.target.adminUrl, o.target.adminToken);
    } else {
      const configText = configTextOf(scenario, file);
      for (const [id, secret] of declaredSecrets(configText, file, env)) secrets.set(id, { current: secret });
      target = startInProcessTarget({
        configText,
        env,
        clockStart: Date.parse(scenario.clock ?? DEFAULT_CLOCK),
        log,
      });
    }
  } catch (err) {
    return result(err instanceof Error ? err.message : String(err));
  }
  for (const [id, secret] of Object.entries(scenario.secrets ?? {})) secrets.set(id, { current: secret });

  const run = new StepRunner(target, secrets, file, prng(o.seed), o.stepTimeoutMs ?? 30_000, now);
  try {
    for (const [i, step] of scenario.steps.entries()) {
      const r = steps[i]!;
      const t0 = now();
      try {
        await run.step(step, r);
      } catch (err) {
        r.failures.push({
          at: "step",
          expected: "to run",
          actual: err instanceof Error ? err.message : String(err),
        });
      }
      r.ms = now() - t0;
      r.status = r.failures.length === 0 ? "passed" : "failed";
      if (r.status === "failed") {
        if (warnings.length) r.notes.push(...warnings.slice(-5).map((w) => `gateway ${w}`));
        break;
      }
    }
  } finally {
    await run.drain();
    await target.close();
  }
  return result();
}

function titleOf(step: Step): string {
  const own = step.name ? `: ${step.name}` : "";
  if ("request" in step) {
    const r = step.request;
    const who = r.as ? ` as ${r.as}${r.secret === "previous" ? " (previous secret)" : ""}` : "";
    const times = r.repeat && r.repeat > 1 ? ` ×${r.repeat}` : "";
    const bg = step.background ? ` in the background as "${step.background}"` : "";
    return `request ${r.method ?? "GET"} ${r.path}${who}${times}${bg}${own}`;
  }
  if ("await" in step) return `await "${step.await}"${own}`;
  if ("advance" in step) return `advance the clock ${step.advance}${own}`;
  if ("set" in step) return `set the clock to ${step.set}${own}`;
  if ("admin" in step) return `admin ${step.admin.method ?? "GET"} ${step.admin.path}${own}`;
  if ("reload" in step) return `reload the config${own}`;
  return `expect usage${step.expectUsage.tenant ? ` of ${step.expectUsage.tenant}` : ""}${own}`;
}

/** The config to run: the file `config` names (relative to the scenario), or the inline `gateway`. */
function configTextOf(scenario: Scenario, file: string): string {
  if (scenario.config !== undefined) return readFileSync(resolve(dirname(file), scenario.config), "utf8");
  return stringify(scenario.gateway);
}

/** Secrets of the keys the config declares with `secret:`, so steps can send `as: <key id>`. */
function declaredSecrets(configText: string, file: string, env: Env): [string, string][] {
  let loaded: ReturnType<typeof parseConfig>;
  try {
    loaded = parseConfig(configText, `${file} (config)`, env);
  } catch (err) {
    if (err instanceof ConfigError) throw new Error(`the scenario's config is invalid:\n${err.message}`);
    throw err;
  }
  const out: [string, string][] = [];
  for (const t of Object.values(loaded.config.tenants ?? {})) {
    for (const k of t.keys ?? []) if (k.secret !== undefined) out.push([k.id, k.secret]);
  }
  return out;
}

class StepRunner {
  /** Background requests by name, with what they came back with. */
  private readonly background = new Map<string, Promise<Observed | Failure>>();
  /** Requests sent whose answer has not fully arrived yet. */
  private inFlight = 0;

  constructor(
    private readonly target: Target,
    private readonly secrets: Secrets,
    private readonly file: string,
    private readonly random: () => number,
    private readonly timeoutMs: number,
    private readonly now: () => number,
  ) {}

  async step(step: Step, r: StepResult): Promise<void> {
    if ("request" in step) return this.request(step, r);
    if ("await" in step) {
      const seen = await this.settle(this.background.get(step.await)!, r);
      if (isFailure(seen)) r.failures.push(seen);
      else if (step.expect) r.failures.push(...checkResponse(step.expect, seen));
      return;
    }
    if ("advance" in step) return this.moveClock({ advance: step.advance }, r);
    if ("set" in step) return this.moveClock({ set: step.set }, r);
    if ("admin" in step) {
      const seen = await this.admin(step.admin.method ?? "GET", step.admin.path, step.admin.json);
      r.failures.push(...checkAdmin(step.expect, seen));
      return;
    }
    if ("reload" in step) {
      const { config, gateway } = step.reload;
      if (config !== undefined || gateway !== undefined) {
        const text =
          config !== undefined
            ? readFileSync(resolve(dirname(this.file), config), "utf8")
            : stringify(gateway);
        if (!this.target.replaceConfig(text)) {
          r.failures.push({
            at: "reload",
            expected: "a config to load",
            actual: "a --target run cannot replace the target's config file",
          });
          return;
        }
      }
      const seen = await this.admin("POST", "/config/reload");
      r.failures.push(...checkAdmin(step.expect, seen, step.expect?.status === undefined ? 200 : undefined));
      return;
    }
    const u = step.expectUsage;
    const query = new URLSearchParams();
    for (const k of ["tenant", "from", "to", "groupBy"] as const) if (u[k] !== undefined) query.set(k, u[k]);
    const seen = await this.admin("GET", `/usage?${query}`);
    if (seen.status !== 200) {
      r.failures.push({ at: "status", expected: "200", actual: `${seen.status} ${show(seen.text)}` });
      return;
    }
    r.failures.push(...checkUsage(u, JSON.parse(seen.text)));
  }

  /** Waits for what background requests are still out, so the gateway can stop cleanly. */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.background.values()]);
  }

  private async request(step: RequestStep, r: StepResult): Promise<void> {
    const spec = step.request;
    const headers: Record<string, string> = { ...spec.headers };
    if (spec.as !== undefined) {
      const known = this.secrets.get(spec.as);
      const secret = spec.secret === "previous" ? known?.previous : known?.current;
      if (secret === undefined) {
        r.failures.push({
          at: "request.as",
          expected: `a ${spec.secret === "previous" ? "previous " : ""}secret for key "${spec.as}"`,
          actual:
            "none known: declare the key with secret: in the config, create or rotate it in an admin step, " +
            "or give it under secrets:",
        });
        return;
      }
      headers["x-api-key"] = secret;
    }
    let body = spec.body;
    if (spec.json !== undefined) {
      body = JSON.stringify(spec.json);
      headers["content-type"] ??= "application/json";
    }
    const send = () => this.send({ method: spec.method ?? "GET", path: spec.path, headers, body });
    if (step.background !== undefined) {
      this.background.set(step.background, send());
      return;
    }
    const times = spec.repeat ?? 1;
    for (let i = 0; i < times; i++) {
      const seen = await this.settle(send(), r);
      if (isFailure(seen)) {
        r.failures.push(seen);
        return;
      }
      const failures = step.expect ? checkResponse(step.expect, seen) : [];
      if (failures.length) {
        r.failures.push(...failures.map((f) => (times > 1 ? { ...f, at: `#${i + 1} ${f.at}` } : f)));
        return;
      }
      if (i < times - 1 && (spec.every !== undefined || spec.jitter !== undefined)) {
        const ms = this.spacing(spec.every, spec.jitter);
        if (ms > 0) await this.moveClock({ advance: `${ms}ms` }, r);
        if (r.failures.length) return;
      }
    }
  }

  /** `every` ± up to `jitter`, from the seeded generator; never negative. */
  private spacing(every: string | undefined, jitter: string | undefined): number {
    const base = every ? parseDuration(every) : 0;
    const j = jitter ? parseDuration(jitter) : 0;
    return Math.max(0, Math.round(base + (this.random() * 2 - 1) * j));
  }

  /** One data-plane request; resolves once its whole body has arrived (or broke off). */
  private async send(req: {
    method: string;
    path: string;
    headers: Record<string, string>;
    body?: string | undefined;
  }): Promise<Observed | Failure> {
    this.inFlight++;
    try {
      const res = await fetch(`${this.target.dataUrl}${req.path}`, {
        method: req.method,
        headers: req.headers,
        body: req.body,
        redirect: "manual",
      });
      const { text, complete } = await readAll(res);
      return {
        status: res.status,
        headers: res.headers,
        text,
        complete,
        upstream: this.target.forwarded(res.headers.get("x-request-id")),
      } satisfies Observed;
    } catch (err) {
      return {
        at: "request",
        expected: "an answer",
        actual: `the request failed: ${String(err)}`,
      } satisfies Failure;
    } finally {
      this.inFlight--;
    }
  }

  private async admin(method: string, path: string, json?: unknown): Promise<Observed> {
    const headers: Record<string, string> = {};
    if (this.target.adminToken) headers.authorization = `Bearer ${this.target.adminToken}`;
    if (json !== undefined) headers["content-type"] = "application/json";
    const res = await fetch(`${this.target.adminUrl}${path}`, {
      method,
      headers,
      body: json === undefined ? undefined : JSON.stringify(json),
    });
    const seen: Observed = {
      status: res.status,
      headers: res.headers,
      text: await res.text(),
      complete: true,
    };
    this.rememberSecret(seen);
    return seen;
  }

  /** Keys created or rotated through the control API can be used by id in later steps. */
  private rememberSecret(seen: Observed): void {
    if (seen.status >= 300 || !seen.text.includes('"secret"')) return;
    try {
      const body = JSON.parse(seen.text) as { key?: { id?: unknown }; secret?: unknown };
      if (typeof body.key?.id === "string" && typeof body.secret === "string") {
        const previous = this.secrets.get(body.key.id)?.current;
        this.secrets.set(body.key.id, { current: body.secret, ...(previous ? { previous } : {}) });
      }
    } catch {
      // Not a key answer.
    }
  }

  private async moveClock(body: { advance: string } | { set: string }, r: StepResult): Promise<void> {
    const seen = await this.admin("POST", "/clock", body);
    if (seen.status === 404) {
      r.failures.push({
        at: "clock",
        expected: "a test-mode gateway",
        actual: "the target has no /clock: start it with gatehouse serve --test-mode",
      });
    } else r.failures.push(...checkAdmin({ status: 200 }, seen));
  }

  /**
   * Waits for `p`; meanwhile, when every request in flight waits on the in-process clock, moves the
   * clock to the next timer of a request in flight.
   */
  private async settle<T>(p: Promise<T>, r: StepResult): Promise<T | Failure> {
    let done = false;
    p.then(
      () => {
        done = true;
      },
      () => {
        done = true;
      },
    );
    const deadline = this.now() + this.timeoutMs;
    const clock = this.target.clock;
    while (!done) {
      await Bun.sleep(POLL_MS);
      if (done) break;
      if (clock && this.inFlight > 0 && clock.waitingUpstreams >= this.inFlight) {
        const next = clock.nextRequestTimer();
        if (next !== null) {
          const skipped = next - clock.now();
          await clock.set(next);
          r.notes.push(`the clock skipped ${formatDuration(skipped)} to ${new Date(next).toISOString()}`);
        }
      }
      if (this.now() > deadline) {
        return {
          at: "answer",
          expected: `an answer within ${formatDuration(this.timeoutMs)} of real time`,
          actual: clock ? "none: the request waits on something other than the clock" : "none",
        };
      }
    }
    return p;
  }
}

const isFailure = (v: Observed | Failure): v is Failure => "at" in v;

/** The whole body as text, and whether it arrived whole (a cut-off body is not an error here). */
async function readAll(res: Response): Promise<{ text: string; complete: boolean }> {
  if (!res.body) return { text: "", complete: true };
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { text: text + decoder.decode(), complete: true };
      text += decoder.decode(value, { stream: true });
    }
  } catch {
    return { text: text + decoder.decode(), complete: false };
  }
}
