/**
 * Keys fetched from an identity provider's JWKS URL, cached. Every fetch goes through the injected
 * `fetch` and is cut off after `timeout` on the injected scheduler; every age is read from the
 * injected clock.
 *
 * - The first token waits for the first fetch (at most `timeout`).
 * - Keys older than `cacheFor` keep being used while a fetch runs in the background.
 * - A token naming a `kid` the set lacks triggers a fetch (rotation), at most once per `cooldown`:
 *   made-up kids cannot turn into a flood of fetches.
 * - While the provider is down, the last good set keeps verifying; failed fetches are retried at
 *   most once per `cooldown`, and one in flight is shared by every request that waits for it.
 */
import type { Clock } from "../lib/clock.ts";
import type { Scheduler } from "../lib/scheduler.ts";
import { parseJwks } from "./check.ts";
import type { RemoteKeys } from "./compile.ts";
import { LocalKeySet, NoKeyError } from "./keys.ts";
import type { JwtAlgorithm } from "./schema.ts";

/** A JWKS document larger than this is refused: real ones are a few kilobytes. */
export const MAX_JWKS_BYTES = 256 * 1024;

export interface FetchDeps {
  fetch: typeof fetch;
  clock: Clock;
  scheduler: Scheduler;
  log?: (level: "warn" | "info", message: string, fields: Record<string, unknown>) => void;
}

export class RemoteKeySet {
  private keys: LocalKeySet | null = null;
  private fetchedAt = Number.NEGATIVE_INFINITY;
  private attemptedAt = Number.NEGATIVE_INFINITY;
  private inflight: Promise<void> | null = null;
  /** Fetches made, for tests and explain. */
  fetches = 0;
  lastError: string | null = null;

  constructor(
    private readonly source: RemoteKeys,
    private readonly algorithms: readonly JwtAlgorithm[],
    private readonly deps: FetchDeps,
  ) {}

  async key(alg: JwtAlgorithm, kid: string | undefined): Promise<CryptoKey | Uint8Array> {
    const now = this.deps.clock.now();
    const cooled = now - this.attemptedAt >= this.source.cooldownMs;
    if (this.keys === null) {
      if (cooled || this.inflight) await this.refresh();
    } else if (now - this.fetchedAt >= this.source.cacheForMs && cooled) {
      void this.refresh();
    }
    const keys = this.keys as LocalKeySet | null;
    if (keys === null)
      throw new NoKeyError(`the identity provider's keys are unavailable (${this.lastError})`, false);
    try {
      return await keys.key(alg, kid);
    } catch (err) {
      // A new kid usually means the provider rotated its keys: fetch them, unless that was just done.
      if (!(err instanceof NoKeyError) || !err.unknownKid) throw err;
      if (this.inflight) await this.inflight;
      else if (this.deps.clock.now() - this.attemptedAt >= this.source.cooldownMs) await this.refresh();
      else throw err;
      return this.keys!.key(alg, kid);
    }
  }

  /** Fetches the set once, however many requests ask at the same time. Never rejects. */
  refresh(): Promise<void> {
    this.inflight ??= this.fetchOnce().finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }

  private async fetchOnce(): Promise<void> {
    this.attemptedAt = this.deps.clock.now();
    this.fetches++;
    const controller = new AbortController();
    const cancel = this.deps.scheduler.after(this.source.timeoutMs, () => controller.abort());
    try {
      const res = await this.deps.fetch(this.source.url, {
        signal: controller.signal,
        redirect: "error",
        headers: { accept: "application/jwk-set+json, application/json" },
      });
      if (res.status !== 200) throw new Error(`status ${res.status}`);
      const declared = Number(res.headers.get("content-length") ?? 0);
      if (declared > MAX_JWKS_BYTES) throw new Error("the document is too large");
      const text = await res.text();
      if (text.length > MAX_JWKS_BYTES) throw new Error("the document is too large");
      const parsed = parseJwks(text);
      if ("error" in parsed) throw new Error(parsed.error);
      const keys = new LocalKeySet(parsed.keys, this.algorithms);
      if (keys.size === 0) throw new Error("no key in the set fits the source's algorithms");
      this.keys = keys;
      this.fetchedAt = this.deps.clock.now();
      if (this.lastError !== null) this.deps.log?.("info", "JWKS fetch recovered", { url: this.source.url });
      this.lastError = null;
    } catch (err) {
      const why = controller.signal.aborted ? `no answer within ${this.source.timeoutMs} ms` : errorText(err);
      this.lastError = why;
      // The last good set keeps serving; this only says that it is getting old.
      this.deps.log?.("warn", "JWKS fetch failed", {
        url: this.source.url,
        error: why,
        keptKeys: this.keys !== null,
      });
    } finally {
      cancel();
    }
  }
}

const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err)).slice(0, 200);

/**
 * The remote key sets of the running gateway, one per URL and settings. They outlive snapshots: a
 * control-API change or a reload that keeps a source keeps its cached keys.
 */
export class RemoteKeySets {
  private readonly sets = new Map<string, RemoteKeySet>();

  constructor(private readonly deps: FetchDeps) {}

  for(source: RemoteKeys, algorithms: readonly JwtAlgorithm[]): RemoteKeySet {
    const id = JSON.stringify([
      source.url,
      source.cacheForMs,
      source.timeoutMs,
      source.cooldownMs,
      algorithms,
    ]);
    let set = this.sets.get(id);
    if (!set) {
      set = new RemoteKeySet(source, algorithms, this.deps);
      this.sets.set(id, set);
    }
    return set;
  }
}
