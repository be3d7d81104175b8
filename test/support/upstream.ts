/** A real upstream on a free port that records exactly what it received, scriptable per path. */
import type { Server } from "bun";

export interface Received {
  method: string;
  /** The request target as the upstream saw it (path and query). */
  target: string;
  headers: Record<string, string>;
  body: string;
}

export type Script = (req: Request, server: Server<undefined>) => Response | Promise<Response>;

export interface RecordingUpstream {
  readonly url: string;
  readonly port: number;
  readonly received: Received[];
  /** Answer requests whose path starts with `prefix` with `script` instead of the default 200. */
  on(prefix: string, script: Script): void;
  stop(): Promise<void>;
}

export function startUpstream(): RecordingUpstream {
  const received: Received[] = [];
  const scripts: [string, Script][] = [];
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    async fetch(req, srv) {
      const u = new URL(req.url);
      const body = req.body ? await req.text() : "";
      received.push({
        method: req.method,
        target: u.pathname + u.search,
        headers: Object.fromEntries(req.headers),
        body,
      });
      const script = scripts.find(([p]) => u.pathname.startsWith(p))?.[1];
      if (script) return script(new Request(req.url, { method: req.method, headers: req.headers }), srv);
      return Response.json({ ok: true, path: u.pathname });
    },
  });
  return {
    url: `http://127.0.0.1:${server.port}`,
    port: server.port!,
    received,
    on: (prefix, script) => {
      scripts.unshift([prefix, script]);
    },
    stop: () => server.stop(true),
  };
}
