/** `cluster:`'s Redis settings with their defaults, and what the schema cannot check about them. */
import type { ReferenceIssue } from "../../config/check-references.ts";
import type { GatewayConfig } from "../../config/schema.ts";
import { parseDuration } from "../../config/units.ts";
import type { RedisClusterDecl } from "./schema.ts";

export type OnStoreError = "local" | "open" | "closed";

export interface RedisSettings {
  readonly url: string;
  readonly onStoreError: OnStoreError;
  readonly timeoutMs: number;
  readonly keyPrefix: string;
  /** Nodes assumed before any were seen in Redis. */
  readonly nodes: number;
  readonly leaseMs: number;
}

export const REDIS_DEFAULTS = { timeout: "50ms", keyPrefix: "gatehouse:", leaseTtl: "30s" } as const;

/** The settings in force, or null when the config has no `cluster.redis`. */
export function redisSettings(cluster: RedisClusterDecl | undefined): RedisSettings | null {
  if (!cluster?.redis) return null;
  return {
    url: cluster.redis,
    onStoreError: cluster.onStoreError ?? "local",
    timeoutMs: parseDuration(cluster.redisTimeout ?? REDIS_DEFAULTS.timeout),
    keyPrefix: cluster.keyPrefix ?? REDIS_DEFAULTS.keyPrefix,
    nodes: cluster.nodes ?? 1,
    leaseMs: parseDuration(cluster.leaseTtl ?? REDIS_DEFAULTS.leaseTtl),
  };
}

type Path = (string | number)[];

/** Located issues: a URL Redis clients cannot use, bounds, and settings that need `redis`. Values are never quoted (a URL may hold a password). */
export function checkRedisSettings(c: GatewayConfig): ReferenceIssue[] {
  const cluster = c.cluster;
  if (!cluster) return [];
  const issues: ReferenceIssue[] = [];
  const at = (key: string): Path => ["cluster", key];
  if (cluster.redis === undefined) {
    for (const key of ["onStoreError", "redisTimeout", "keyPrefix", "nodes", "leaseTtl"] as const) {
      if (cluster[key] !== undefined) {
        issues.push({
          path: at(key),
          message: "applies to the shared counters in Redis, and cluster.redis is not set",
          hint: "set cluster.redis to a Redis URL, or remove this setting",
        });
      }
    }
    return issues;
  }
  const url = URL.parse(cluster.redis);
  const port = url?.port ? Number(url.port) : 6379;
  if (!url || url.hostname === "" || !(port >= 1 && port <= 65535)) {
    issues.push({
      path: at("redis"),
      message: "is not a usable Redis URL: the host is missing or the port is not 1-65535",
      hint: "write redis://HOST:PORT (or rediss:// for TLS), e.g. redis://127.0.0.1:6379",
    });
  } else if (!/^(\/[0-9]*)?$/.test(url.pathname)) {
    issues.push({
      path: at("redis"),
      message: "the path of a Redis URL can only be a database number",
      hint: "write redis://HOST:PORT/0, or leave the path out",
    });
  }
  if (cluster.redisTimeout !== undefined) {
    const ms = parseDuration(cluster.redisTimeout);
    if (ms === 0) {
      issues.push({
        path: at("redisTimeout"),
        message: "must be longer than 0",
        hint: "0 would decide every request by onStoreError, never in Redis",
      });
    } else if (!(ms <= 5000)) {
      issues.push({
        path: at("redisTimeout"),
        message: "must be at most 5s",
        hint: "a sick Redis would hold every request this long; onStoreError is there to decide sooner",
      });
    }
  }
  if (cluster.leaseTtl !== undefined) {
    const ms = parseDuration(cluster.leaseTtl);
    if (ms < 3000) {
      issues.push({
        path: at("leaseTtl"),
        message: "must be at least 3s",
        hint: "leases are renewed every third of it; a shorter one could expire under a request still running",
      });
    } else if (!(ms <= 3_600_000)) {
      issues.push({
        path: at("leaseTtl"),
        message: "must be at most 1h",
        hint: "a node that dies keeps its tenants' concurrency slots this long",
      });
    }
  }
  return issues;
}
