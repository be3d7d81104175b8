/**
 * Which client carries requests to real upstreams. gatehouse's HTTP/1.1 client, unless Bun's fetch
 * must: a fetch injected by the embedder (tests record traffic that way), or an HTTP proxy named in
 * the environment (fetch honours HTTP_PROXY, HTTPS_PROXY and NO_PROXY; the HTTP/1.1 client connects
 * directly). Base URLs never carry credentials: the config refuses them.
 */
import type { Env } from "../config/interpolate.ts";
import type { DeadlineSource } from "../lib/deadlines.ts";
import type { Scheduler } from "../lib/scheduler.ts";
import { Http1Client } from "./http1/client.ts";
import { FetchClient } from "./response-call.ts";
import type { UpstreamClient } from "./upstream-call.ts";

const PROXY_VARIABLES = ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"];

export interface ClientOptions {
  /** An injected fetch carries every request. */
  fetch?: typeof fetch | undefined;
  env: Env;
  deadlines: DeadlineSource;
  /** Real time, for closing idle connections. */
  housekeeping: Scheduler;
  now: () => number;
  /** How many clients share each upstream's connection cap (data-plane threads); default 1. */
  sharedBy?: number;
}

export function upstreamClient(o: ClientOptions): UpstreamClient {
  if (o.fetch) return new FetchClient(o.fetch, o.deadlines);
  if (Object.keys(proxyVariables(o.env)).length > 0) return new FetchClient(fetch, o.deadlines);
  return new Http1Client(o);
}

/** The HTTP proxy variables set in `env`: what decides the client, and all a data-plane thread needs of it. */
export function proxyVariables(env: Env): Record<string, string> {
  const set: Record<string, string> = {};
  for (const name of PROXY_VARIABLES) {
    const value = env[name];
    if (value) set[name] = value;
  }
  return set;
}
