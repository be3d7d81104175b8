/**
 * gateway.yaml's `cluster:` settings for the shared counters in Redis. config/schema.ts places them
 * in the `cluster` section; they live here beside the code that reads them. (The duration form
 * repeats config/schema.ts's pattern: importing it would make the two modules import each other.)
 */
import { type Static, Type as T } from "@sinclair/typebox";

const duration = (description: string) =>
  T.String({ pattern: "^[0-9]+(ms|s|m|h|d)$", description, examples: ["50ms", "30s"] });

export const OnStoreError = T.Union([T.Literal("local"), T.Literal("open"), T.Literal("closed")], {
  description:
    "What limits do while Redis cannot be reached: local (the default) enforces on each node its share " +
    "of every limit, quota and concurrency cap (the limit divided by the number of nodes seen), counting " +
    "quotas locally and adding them to Redis when it returns; open admits every request without " +
    "counting; closed refuses every request that has limits with 503.",
});

export const redisClusterFields = {
  redis: T.Optional(
    T.String({
      pattern: "^rediss?://[^\\s]+$",
      description:
        "Redis URL (redis:// or rediss:// for TLS, with user, password and database number as usual). " +
        "Sliding windows, quotas and concurrency caps are then decided in Redis, shared by every node.",
      examples: ["redis://127.0.0.1:6379"],
    }),
  ),
  onStoreError: T.Optional(OnStoreError),
  redisTimeout: T.Optional(
    duration(
      "Longest wait for Redis on a request before onStoreError decides it (default 50ms; more than 0, at most 5s).",
    ),
  ),
  keyPrefix: T.Optional(
    T.String({
      pattern: "^[A-Za-z0-9:_.-]{1,64}$",
      description:
        'Prefix of every Redis key gatehouse writes (default "gatehouse:"); clusters sharing one Redis need distinct ones.',
      examples: ["gatehouse:"],
    }),
  ),
  nodes: T.Optional(
    T.Integer({
      minimum: 1,
      maximum: 10_000,
      description:
        "Nodes assumed by onStoreError: local before this node has seen any in Redis (default 1). Once it " +
        "has, it uses the count of live nodes it saw last.",
    }),
  ),
  leaseTtl: T.Optional(
    duration(
      "How long a concurrency slot outlives its node: slots are leases, renewed while the request runs; a " +
        "node that dies frees its slots after this long (default 30s; at least 3s, at most 1h).",
    ),
  ),
};

const Fields = T.Object(redisClusterFields);
export type RedisClusterDecl = Static<typeof Fields>;
