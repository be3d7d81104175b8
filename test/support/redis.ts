/**
 * A throwaway redis-server for tests: on a free loopback port, in a temporary directory, nothing
 * saved to disk; stopped (and its directory removed) by `stop`. It can be killed and started again on
 * the same port, and paused (SIGSTOP), to play a Redis that dies, returns or hangs.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";

export interface TestRedis {
  readonly url: string;
  readonly port: number;
  /** SIGKILL: gone at once, with everything it held. */
  kill(): Promise<void>;
  /** Starts again on the same port, empty. */
  restart(): Promise<void>;
  /** SIGSTOP: connections stay open but nothing answers. */
  pause(): void;
  resume(): void;
  /** One command through redis-cli. */
  cli(...args: string[]): string;
  stop(): Promise<void>;
}

function freePort(): number {
  const probe = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = probe.port;
  probe.stop(true);
  return port;
}

async function launch(port: number, dir: string): Promise<Subprocess<"ignore", "pipe", "pipe"> | null> {
  const proc = Bun.spawn(
    [
      "redis-server",
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--dir",
      dir,
    ],
    { stdin: "ignore", stdout: "pipe", stderr: "pipe" },
  );
  const reader = proc.stdout.getReader();
  let out = "";
  const decoder = new TextDecoder();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    out += decoder.decode(value, { stream: true });
    if (out.includes("Ready to accept connections")) {
      // Keep draining, so that the server never blocks on a full pipe.
      void (async () => {
        while (!(await reader.read()).done) {}
      })();
      return proc;
    }
  }
  await proc.exited;
  return null; // the port was taken meanwhile
}

export async function startRedis(): Promise<TestRedis> {
  if (!Bun.which("redis-server")) {
    throw new Error("redis-server is not installed: apt-get install redis-server (.ci/run installs it)");
  }
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-redis-"));
  let port = 0;
  let proc: Subprocess<"ignore", "pipe", "pipe"> | null = null;
  for (let attempt = 0; attempt < 5 && !proc; attempt++) {
    port = freePort();
    proc = await launch(port, dir);
  }
  if (!proc) throw new Error("redis-server did not start");
  let current: Subprocess<"ignore", "pipe", "pipe"> | null = proc;
  const kill = async () => {
    if (!current) return;
    const p = current;
    current = null;
    p.kill("SIGKILL");
    await p.exited;
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    kill,
    async restart() {
      await kill();
      current = await launch(port, dir);
      if (!current) throw new Error(`redis-server could not start again on port ${port}`);
    },
    pause() {
      current?.kill("SIGSTOP");
    },
    resume() {
      current?.kill("SIGCONT");
    },
    cli(...args: string[]) {
      const r = Bun.spawnSync(["redis-cli", "-p", String(port), ...args], { stdout: "pipe", stderr: "pipe" });
      return r.stdout.toString().trim();
    },
    async stop() {
      current?.kill("SIGCONT");
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
