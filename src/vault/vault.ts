/**
 * The running gateway's vault: which credentials exist, and their decrypted values, in memory only.
 * Snapshots read values from here when they compile upstream headers; the control API seals new
 * values and tells the vault once they are committed. Nothing here writes a value anywhere.
 */
import { Database } from "bun:sqlite";
import { existsSync } from "node:fs";
import { drizzle } from "drizzle-orm/bun-sqlite";
import type { Db } from "../db/open.ts";
import type { Log } from "../lib/log.ts";
import {
  DecryptError,
  importMasterKey,
  MAKE_A_KEY,
  type MasterKey,
  open,
  type Sealed,
  seal,
} from "./crypto.ts";
import { type FoundKey, KEY_FILE_VAR, KEY_VAR, MasterKeyError } from "./master-key.ts";
import { type SealedRow, sealedRows, storedKeyIds } from "./store.ts";

/** What a snapshot needs: a credential's value, or undefined when it is missing or unreadable. */
export interface CredentialValues {
  value(name: string): string | undefined;
}

export const noCredentials: CredentialValues = { value: () => undefined };

/** A credential cannot be stored because no master key was given. */
export class NoMasterKeyError extends Error {
  constructor() {
    super(
      `no master key is set, so credentials cannot be stored; ${MAKE_A_KEY}, then restart gatehouse with ` +
        `${KEY_VAR} set to it, or with the file's path in ${KEY_FILE_VAR} or vault.masterKeyFile`,
    );
  }
}

export class Vault implements CredentialValues {
  private readonly values = new Map<string, string>();
  /** Stored, but they could not be decrypted at start-up: requests that need them get 502. */
  private readonly unreadable = new Set<string>();
  private key: Promise<MasterKey> | null = null;

  private constructor(
    private found: FoundKey | null,
    private pending: number,
  ) {}

  /** No master key and nothing stored: credentials cannot be stored until a key is given. */
  static empty(): Vault {
    return new Vault(null, 0);
  }

  /**
   * Checks the master key against the ids stored beside the ciphertexts. Synchronous and read-only,
   * so a wrong or missing key stops start-up before anything is written or decrypted.
   */
  static open(db: Pick<Db, "select">, found: FoundKey | null): Vault {
    const ids = storedKeyIds(db);
    checkKeyIds(ids, found);
    return new Vault(found, ids.length);
  }

  /** The stored credentials' master key id, or null without a key. */
  get keyId(): string | null {
    return this.found?.id ?? null;
  }

  /** True until unlock() has decrypted what the database holds. */
  get locked(): boolean {
    return this.pending > 0;
  }

  /**
   * Decrypts every stored credential into memory. One that fails (a ciphertext altered or moved to
   * another name) is logged by name and stays unavailable; the others serve.
   */
  async unlock(db: Pick<Db, "select">, log: Log): Promise<void> {
    const rows = sealedRows(db);
    if (rows.length === 0) {
      this.pending = 0;
      return;
    }
    const key = await this.masterKey();
    for (const row of rows) {
      try {
        this.values.set(row.name, await open(key, row.name, row));
      } catch (err) {
        if (!(err instanceof DecryptError)) throw err;
        this.unreadable.add(row.name);
        log("error", "stored credential cannot be decrypted: it was altered or moved from another name", {
          credential: row.name,
          fix: `PUT /credentials/${row.name} with its value again`,
        });
      }
    }
    this.pending = 0;
  }

  /** Whether a credential of this name is stored (readable or not). */
  has(name: string): boolean {
    return this.values.has(name) || this.unreadable.has(name);
  }

  value(name: string): string | undefined {
    return this.values.get(name);
  }

  available(name: string): boolean {
    return this.values.has(name);
  }

  /** Encrypts a value for storage under `name`, with the id of the key it is sealed under. */
  async seal(name: string, value: string): Promise<Sealed & { keyId: string }> {
    const key = await this.masterKey();
    return { ...(await seal(key, name, value)), keyId: key.id };
  }

  /** Makes a committed value the one snapshots read; returns how to undo it if the commit fails. */
  remember(name: string, value: string): () => void {
    const before = this.values.get(name);
    const wasUnreadable = this.unreadable.delete(name);
    this.values.set(name, value);
    return () => {
      if (before === undefined) this.values.delete(name);
      else this.values.set(name, before);
      if (wasUnreadable) this.unreadable.add(name);
    };
  }

  forget(name: string): void {
    this.values.delete(name);
    this.unreadable.delete(name);
  }

  /**
   * Decrypts a credential another node stored (cluster mode); undefined when this node cannot: no
   * master key, another key than the one it was sealed under, or an altered ciphertext.
   */
  async openShared(row: SealedRow): Promise<string | undefined> {
    if (!this.found || row.keyId !== this.found.id) return undefined;
    try {
      return await open(await this.masterKey(), row.name, row);
    } catch (err) {
      if (err instanceof DecryptError) return undefined;
      throw err;
    }
  }

  /** A stored credential this node cannot read: requests that need it get 502. Returns how to undo it. */
  markUnreadable(name: string): () => void {
    const before = this.values.get(name);
    const was = this.unreadable.has(name);
    this.values.delete(name);
    this.unreadable.add(name);
    return () => {
      if (before !== undefined) this.values.set(name, before);
      if (!was) this.unreadable.delete(name);
    };
  }

  private masterKey(): Promise<MasterKey> {
    if (!this.key) {
      const found = this.found;
      if (!found) return Promise.reject(new NoMasterKeyError());
      this.key = importMasterKey(found.raw).then((k) => {
        // WebCrypto holds its own copy; ours is not needed again.
        found.raw.fill(0);
        return k;
      });
    }
    return this.key;
  }
}

function checkKeyIds(ids: readonly string[], found: FoundKey | null): void {
  if (ids.length > 0 && !found) {
    throw new MasterKeyError(
      `the database holds stored credentials, and no master key is given; set ${KEY_VAR} to the key ` +
        `they were stored with (or its file's path in ${KEY_FILE_VAR} or vault.masterKeyFile)`,
    );
  }
  const other = ids.find((id) => id !== found?.id);
  if (found && other !== undefined) {
    throw new MasterKeyError(
      `the master key from ${found.from} (id ${found.id}) is not the one the stored credentials are ` +
        `encrypted with (id ${other}); give that key (after rotate-master-key, the new one). Nothing was changed`,
    );
  }
}

/**
 * The same check as Vault.open, on a read-only connection, before the database is opened for
 * writing: closing a writing connection folds the WAL into the file, so a refused start-up would
 * otherwise still change the file's bytes. A file that cannot be read so is left to Vault.open.
 */
export function checkMasterKeyBeforeOpening(path: string, found: FoundKey | null): void {
  if (path === ":memory:" || !existsSync(path)) return;
  let ids: string[];
  try {
    const sqlite = new Database(path, { readonly: true });
    try {
      ids = storedKeyIds(drizzle({ client: sqlite }));
    } finally {
      sqlite.close();
    }
  } catch {
    return;
  }
  checkKeyIds(ids, found);
}
