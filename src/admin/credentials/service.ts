/**
 * Credentials through the control API: stored encrypted, listed by name, never returned. A new value
 * reaches the data plane on the next request; one still in use cannot be deleted.
 */
import type { Static } from "@sinclair/typebox";
import { ne } from "drizzle-orm";
import type { Db } from "../../db/open.ts";
import { tenants } from "../../db/schema.ts";
import { type CredentialUsers, describeUsers, inUse, usersOf } from "../../vault/references.ts";
import {
  type CredentialRow,
  credentialRow,
  credentialRows,
  deleteCredential,
  sealedUnderOtherKey,
  writeCredential,
} from "../../vault/store.ts";
import { NoMasterKeyError } from "../../vault/vault.ts";
import { iso } from "../fields.ts";
import { pageOf } from "../pagination.ts";
import { AdminProblem, conflict, notFound } from "../problem.ts";
import { type AdminStore, commit } from "../store.ts";
import type { CredentialView, PutCredentialBody } from "./model.ts";

export type Credential = Static<typeof CredentialView>;

/** What the audit log keeps of a value: that there is one, never what it is. */
const MASKED_VALUE = "***";

export class CredentialService {
  constructor(private readonly store: AdminStore) {}

  private get db() {
    return this.store.database.db;
  }

  private get vault() {
    return this.store.state.vault;
  }

  list(limit: number, after: string | undefined) {
    const rows = credentialRows(this.db, limit + 1, after);
    const tenantOverrides = this.tenantOverrides(this.db);
    return pageOf(
      rows,
      limit,
      (r) => this.view(r, tenantOverrides),
      (r) => r.name,
    );
  }

  get(name: string): Credential {
    return this.view(this.row(name), this.tenantOverrides(this.db));
  }

  /** Creates or replaces; `created` tells which. */
  async put(
    name: string,
    body: Static<typeof PutCredentialBody>,
    actor: string,
  ): Promise<{ created: boolean; credential: Credential }> {
    let sealed: Awaited<ReturnType<typeof this.vault.seal>>;
    try {
      sealed = await this.vault.seal(name, body.value);
    } catch (err) {
      if (err instanceof NoMasterKeyError) throw new AdminProblem(409, "master_key_missing", err.message);
      throw err;
    }
    let undo: (() => void) | undefined;
    let created = false;
    try {
      await commit(this.store, (tx) => {
        // rotate-master-key ran while this process kept the old key: sealing under it would leave
        // the database with two keys, one of which the next start-up would refuse.
        if (sealedUnderOtherKey(tx, sealed.keyId)) {
          throw conflict(
            "The stored credentials are encrypted with another master key than the one gatehouse started " +
              "with (rotate-master-key ran since); restart gatehouse with the new key, then try again.",
          );
        }
        const before = credentialRow(tx, name);
        created = before === undefined;
        const description =
          body.description === undefined ? (before?.description ?? null) : body.description || null;
        const now = this.store.clock.now();
        writeCredential(tx, { name, description, ...sealed, now });
        this.store.audit.record(tx, {
          actor,
          action: created ? "credential.create" : "credential.update",
          objectType: "credential",
          objectId: name,
          ...(before ? { before: { name, description: before.description, value: MASKED_VALUE } } : {}),
          after: { name, description, value: MASKED_VALUE, valueChanged: true },
        });
        // Last, so the snapshot rebuilt when this commits injects the new value.
        undo = this.vault.remember(name, body.value);
      });
    } catch (err) {
      undo?.();
      throw err;
    }
    return { created, credential: this.get(name) };
  }

  /** Refused while anything uses it: the users are named, so people know what to change first. */
  async remove(name: string, actor: string): Promise<void> {
    const before = this.row(name);
    await commit(this.store, (tx) => {
      const users = this.users(name, this.tenantOverrides(tx));
      if (inUse(users)) {
        throw conflict(
          `Credential "${name}" is in use by ${describeUsers(users)}; ` +
            "change those first (the config file, or PATCH /tenants/{id}), then delete it.",
        );
      }
      deleteCredential(tx, name);
      this.store.audit.record(tx, {
        actor,
        action: "credential.delete",
        objectType: "credential",
        objectId: name,
        before: { name, description: before.description, value: MASKED_VALUE },
      });
    });
    this.vault.forget(name);
  }

  private row(name: string): CredentialRow {
    const row = credentialRow(this.db, name);
    if (!row) throw notFound(`No credential named "${name}".`);
    return row;
  }

  private tenantOverrides(db: Pick<Db, "select">) {
    return db
      .select({ id: tenants.id, credentials: tenants.credentials })
      .from(tenants)
      .where(ne(tenants.credentials, "{}"))
      .all()
      .map((t) => ({ id: t.id, credentials: JSON.parse(t.credentials) as Record<string, string> }));
  }

  private users(name: string, tenantOverrides: ReturnType<typeof this.tenantOverrides>): CredentialUsers {
    return usersOf(name, this.store.state.config.config, tenantOverrides);
  }

  private view(r: CredentialRow, tenantOverrides: ReturnType<typeof this.tenantOverrides>): Credential {
    return {
      name: r.name,
      description: r.description,
      createdAt: iso(r.createdAt),
      updatedAt: iso(r.updatedAt),
      available: this.vault.available(r.name),
      usedBy: this.users(r.name, tenantOverrides),
    };
  }
}
