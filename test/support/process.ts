/** Runs gatehouse as a real process and learns its ports from the start-up log line. */
import type { Subprocess } from "bun";

export interface GatehouseProcess {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  dataUrl: string;
  adminUrl: string;
  /** Everything the process wrote to stderr so far. */
  stderr(): string;
  /** Resolves once stderr contains `text`. */
  waitFor(text: string): Promise<void>;
  /** Resolves once stderr has ended (the process has exited and all it wrote was read). */
  stderrClosed: Promise<void>;
}

const root = `${import.meta.dir}/../..`;

export function gatehouseCommand(): string[] {
  return [process.execPath, `${root}/src/main.ts`];
}

export async function startProcess(
  command: string[],
  args: string[],
  opts: { cwd?: string; env?: Record<string, string> } = {},
): Promise<GatehouseProcess> {
  const proc = Bun.spawn([...command, ...args], {
    cwd: opts.cwd,
    env: { PATH: process.env.PATH ?? "", ...opts.env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  let err = "";
  const waiters: { text: string; resolve: () => void }[] = [];
  const wake = () => {
    for (const w of waiters.splice(0)) {
      if (err.includes(w.text)) w.resolve();
      else waiters.push(w);
    }
  };
  const decoder = new TextDecoder();
  const reader = proc.stderr.getReader();
  const listening = (async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return null;
      err += decoder.decode(value, { stream: true });
      const line = err.split("\n").find((l) => l.includes('"gatehouse listening"'));
      if (line) return JSON.parse(line) as { proxy: string; admin: string };
    }
  })();
  const started = await Promise.race([listening, proc.exited.then(() => null)]);
  // Keep draining stderr so the process never blocks on a full pipe.
  const stderrClosed = (async () => {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      err += decoder.decode(value, { stream: true });
      wake();
    }
  })();
  if (!started) {
    await proc.exited;
    throw new Error(`gatehouse did not start (exit ${proc.exitCode}):\n${err}`);
  }
  const waitFor = (text: string) =>
    new Promise<void>((resolve) => {
      waiters.push({ text, resolve });
      wake();
    });
  return { proc, dataUrl: started.proxy, adminUrl: started.admin, stderr: () => err, waitFor, stderrClosed };
}
