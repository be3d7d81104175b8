/**
 * Which client carries requests to real upstreams. gatehouse's HTTP/1.1 client, unless Bun's fetch
 * must: a fetch injected by the embedder (tests record traffic that way), an HTTP proxy named in
 * the environment (fetch honours HTTP_PROXY, HTTPS_PROXY and NO_PROXY; the HTTP/1.1 client connects
 * directly), or a base URL with a user name and password, which fetch turns into Basic auth.
 */
import type { Env } from "../config/interpolate.ts";
import type { DeadlineSource } from "../lib/deadlines.ts";
import type { Scheduler } from "../lib/scheduler.ts";
import { Http1Client } from "./http1/client.ts";
import { FetchClient } from "./response-call.ts";
import type { UpstreamTarget } from "./upstream.ts";
import type { UpstreamCall, UpstreamClient, UpstreamRequest } from "./upstream-call.ts";

const PROXY_VARIABLES = ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"];

export interface ClientOptions {
  /** An injected fetch carries every request. */
  fetch?: typeof fetch | undefined;
  env: Env;
  deadlines: DeadlineSource;
  /** Real time, for closing idle connections. */
  housekeeping: Scheduler;
  now: () => number;
}

export function upstreamClient(o: ClientOptions): UpstreamClient {
  if (o.fetch) return new FetchClient(o.fetch, o.deadlines);
  const fetchClient = new FetchClient(fetch, o.deadlines);
  if (PROXY_VARIABLES.some((name) => o.env[name])) return fetchClient;
  const http1 = new Http1Client(o);
  return {
    send: (r: UpstreamRequest): UpstreamCall => (hasUserInfo(r.target) ? fetchClient.send(r) : http1.send(r)),
    close: () => http1.close(),
  };
}

const userInfo = new WeakMap<UpstreamTarget, boolean>();

function hasUserInfo(target: UpstreamTarget): boolean {
  let has = userInfo.get(target);
  if (has === undefined) {
    const url = new URL(target.baseUrl!);
    has = url.username !== "" || url.password !== "";
    userInfo.set(target, has);
  }
  return has;
}
