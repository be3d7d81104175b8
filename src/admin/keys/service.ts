/**
 * The key lifecycle: create (secret shown once), list, change expiry, disable/enable, rotate with a
 * grace period, revoke. Only hashes are stored; every change reaches the data plane on the next request.
 */
import type { Static } from "@sinclair/typebox";
import { and, asc, eq, gt } from "drizzle-orm";
import { parseDuration } from "../../config/units.ts";
import { tenantDecl } from "../../db/declarations.ts";
import { apiKeys, tenants } from "../../db/schema.ts";
import { API_KEY_PREFIX, generateApiKey, randomBase62 } from "../../lib/api-key-format.ts";
import { hashKey } from "../../lib/key-hash.ts";
import { iso, isoOrNull } from "../fields.ts";
import { pageOf } from "../pagination.ts";
import { badRequest, conflict, notFound } from "../problem.ts";
import { type AdminStore, assertApiOwned, checkTenant, commit } from "../store.ts";
import {
  type CreateKeyBody,
  DEFAULT_GRACE,
  type KeyView,
  MAX_GRACE_MS,
  type PatchKeyBody,
  type RotateKeyBody,
} from "./model.ts";

type Row = typeof apiKeys.$inferSelect;
export type Key = Static<typeof KeyView>;
export interface KeyWithSecret {
  key: Key;
  secret: string;
}

/** A hash no secret has, standing in for a new key when its limits are checked. */
const PLACEHOLDER_HASH = `sha256:${"0".repeat(64)}`;

export class KeyService {
  constructor(private readonly store: AdminStore) {}

  private get db() {
    return this.store.database.db;
  }

  /** Works for tenants from the file too (CI creates keys on the fly); the key itself is API-owned. */
  async create(tenantId: string, body: Static<typeof CreateKeyBody>, actor: string): Promise<KeyWithSecret> {
    const tenant = this.db.select().from(tenants).where(eq(tenants.id, tenantId)).get();
    if (!tenant) throw notFound(`No tenant with id "${tenantId}".`);
    const id = body.id ?? `key_${randomBase62(20)}`;
    if (body.limits?.length || body.rules?.length || body.quota) {
      checkTenant(this.store, tenantId, {
        ...tenantDecl(tenant),
        keys: [{ id, hash: PLACEHOLDER_HASH, limits: body.limits, rules: body.rules, quota: body.quota }],
      });
    }
    const secret = generateApiKey();
    const now = this.store.clock.now();
    const row = await commit(this.store, (tx) => {
      if (tx.select({ id: apiKeys.id }).from(apiKeys).where(eq(apiKeys.id, id)).get()) {
        throw conflict(`A key with id "${id}" already exists.`);
      }
      const inserted = tx
        .insert(apiKeys)
        .values({
          id,
          tenantId,
          name: body.name ?? null,
          metadata: JSON.stringify(body.metadata ?? {}),
          hash: hashKey(secret),
          prefix: API_KEY_PREFIX,
          last4: secret.slice(-4),
          limits: JSON.stringify(body.limits ?? []),
          rules: JSON.stringify(body.rules ?? []),
          quota: body.quota ? JSON.stringify(body.quota) : null,
          disabled: body.disabled ?? false,
          expiresAt: body.expiresAt ? Date.parse(body.expiresAt) : null,
          source: "api",
          sourceRef: null,
          createdAt: now,
          updatedAt: now,
        })
        .returning()
        .get();
      this.store.audit.record(tx, {
        actor,
        action: "key.create",
        objectType: "key",
        objectId: id,
        after: toView(inserted),
      });
      return inserted;
    });
    return { key: toView(row), secret };
  }

  listForTenant(tenantId: string, limit: number, after: string | undefined) {
    if (!this.db.select({ id: tenants.id }).from(tenants).where(eq(tenants.id, tenantId)).get()) {
      throw notFound(`No tenant with id "${tenantId}".`);
    }
    const rows = this.db
      .select()
      .from(apiKeys)
      .where(and(eq(apiKeys.tenantId, tenantId), after === undefined ? undefined : gt(apiKeys.id, after)))
      .orderBy(asc(apiKeys.id))
      .limit(limit + 1)
      .all();
    return pageOf(rows, limit, toView, (r) => r.id);
  }

  get(id: string): Key {
    return toView(this.row(id));
  }

  async update(id: string, body: Static<typeof PatchKeyBody>, actor: string): Promise<Key> {
    const before = this.apiOwned(id);
    const set: Partial<Row> = { updatedAt: this.store.clock.now() };
    if (body.name !== undefined) set.name = body.name;
    if (body.metadata !== undefined) set.metadata = JSON.stringify(body.metadata);
    if (body.disabled !== undefined) set.disabled = body.disabled;
    if (body.expiresAt !== undefined)
      set.expiresAt = body.expiresAt === null ? null : Date.parse(body.expiresAt);
    const row = await this.change(id, set, actor, before, keyAction(before, set));
    return toView(row);
  }

  /** A new secret; the old one keeps working until the grace period ends, so clients can switch over. */
  async rotate(id: string, body: Static<typeof RotateKeyBody>, actor: string): Promise<KeyWithSecret> {
    const before = this.apiOwned(id);
    const graceMs = parseDuration(body.gracePeriod ?? DEFAULT_GRACE);
    if (graceMs > MAX_GRACE_MS) throw badRequest("gracePeriod may be at most 7d.");
    const secret = generateApiKey();
    const now = this.store.clock.now();
    const row = await this.change(
      id,
      {
        hash: hashKey(secret),
        last4: secret.slice(-4),
        prefix: API_KEY_PREFIX,
        // One previous secret at most: rotating again during a grace period ends the older one.
        previousHash: graceMs > 0 ? before.hash : null,
        graceUntil: graceMs > 0 ? now + graceMs : null,
        updatedAt: now,
      },
      actor,
      before,
      "key.rotate",
    );
    return { key: toView(row), secret };
  }

  /**
   * Ends a rotation's grace period now: the previous secret fails from the next request on. Calling it
   * again, or on a key with no previous secret, changes nothing.
   */
  async endGrace(id: string, actor: string): Promise<Key> {
    const before = this.apiOwned(id);
    if (before.previousHash === null) return toView(before);
    const set = { previousHash: null, graceUntil: null, updatedAt: this.store.clock.now() };
    return toView(await this.change(id, set, actor, before, "key.end_grace"));
  }

  /** Deletes the key: the next request with either of its secrets fails. */
  async revoke(id: string, actor: string): Promise<void> {
    const before = this.apiOwned(id);
    await commit(this.store, (tx) => {
      tx.delete(apiKeys).where(eq(apiKeys.id, id)).run();
      this.store.audit.record(tx, {
        actor,
        action: "key.revoke",
        objectType: "key",
        objectId: id,
        before: { ...toView(before), hash: before.hash },
      });
    });
  }

  private change(id: string, set: Partial<Row>, actor: string, before: Row, action: string): Promise<Row> {
    return commit(this.store, (tx) => {
      const row = tx.update(apiKeys).set(set).where(eq(apiKeys.id, id)).returning().get();
      this.store.audit.record(tx, {
        actor,
        action,
        objectType: "key",
        objectId: id,
        // The hashes are listed so the log shows a rotation happened; mask() hides their values.
        before: { ...toView(before), hash: before.hash },
        after: { ...toView(row), hash: row.hash },
      });
      return row;
    });
  }

  private row(id: string): Row {
    const row = this.db.select().from(apiKeys).where(eq(apiKeys.id, id)).get();
    if (!row) throw notFound(`No key with id "${id}".`);
    return row;
  }

  private apiOwned(id: string): Row {
    const row = this.row(id);
    assertApiOwned(row, `Key "${id}"`, this.store.state.config.file);
    return row;
  }
}

function keyAction(before: Row, set: Partial<Row>): string {
  if (set.disabled === true && !before.disabled) return "key.disable";
  if (set.disabled === false && before.disabled) return "key.enable";
  return "key.update";
}

export function toView(row: Row): Key {
  return {
    id: row.id,
    tenantId: row.tenantId,
    name: row.name,
    metadata: JSON.parse(row.metadata) as Record<string, string>,
    prefix: row.prefix,
    last4: row.last4,
    createdAt: iso(row.createdAt),
    updatedAt: iso(row.updatedAt),
    expiresAt: isoOrNull(row.expiresAt),
    lastUsedAt: isoOrNull(row.lastUsedAt),
    disabled: row.disabled,
    previousSecretValidUntil: row.previousHash === null ? null : isoOrNull(row.graceUntil),
    limits: JSON.parse(row.limits),
    rules: JSON.parse(row.rules),
    quota: row.quota === null ? null : JSON.parse(row.quota),
    source: row.source,
    sourceRef: row.sourceRef,
  };
}
