/** The vault's rows in SQLite: ciphertexts and metadata, never a value. */
import { asc, eq, gt, ne } from "drizzle-orm";
import type { Db } from "../db/open.ts";
import { credentials } from "../db/schema.ts";
import type { Sealed } from "./crypto.ts";

type Reader = Pick<Db, "select">;
type Writer = Pick<Db, "insert" | "update" | "delete">;

export type CredentialRow = Omit<typeof credentials.$inferSelect, "ciphertext" | "iv" | "keyId">;

const metadata = {
  name: credentials.name,
  description: credentials.description,
  createdAt: credentials.createdAt,
  updatedAt: credentials.updatedAt,
};

export function credentialRow(db: Reader, name: string): CredentialRow | undefined {
  return db.select(metadata).from(credentials).where(eq(credentials.name, name)).get();
}

/** Ordered by name, `limit` after `after`. */
export function credentialRows(db: Reader, limit: number, after?: string): CredentialRow[] {
  return db
    .select(metadata)
    .from(credentials)
    .where(after === undefined ? undefined : gt(credentials.name, after))
    .orderBy(asc(credentials.name))
    .limit(limit)
    .all();
}

export interface SealedRow extends Sealed {
  readonly name: string;
  readonly keyId: string;
}

export function sealedRows(db: Reader): SealedRow[] {
  return db
    .select({
      name: credentials.name,
      iv: credentials.iv,
      ciphertext: credentials.ciphertext,
      keyId: credentials.keyId,
    })
    .from(credentials)
    .orderBy(asc(credentials.name))
    .all();
}

/** The ids of the master keys the stored credentials are sealed under (one, unless mid-mistake). */
export function storedKeyIds(db: Reader): string[] {
  const ids = db.select({ keyId: credentials.keyId }).from(credentials).all();
  return [...new Set(ids.map((r) => r.keyId))];
}

/** Whether a credential is sealed under another key than `keyId` (a rotation since start-up). */
export function sealedUnderOtherKey(db: Reader, keyId: string): boolean {
  return (
    db.select({ name: credentials.name }).from(credentials).where(ne(credentials.keyId, keyId)).get() !==
    undefined
  );
}

export function writeCredential(
  tx: Writer,
  row: { name: string; description: string | null; keyId: string; now: number } & Sealed,
): void {
  const sealed = { ciphertext: Buffer.from(row.ciphertext), iv: Buffer.from(row.iv), keyId: row.keyId };
  tx.insert(credentials)
    .values({
      name: row.name,
      description: row.description,
      ...sealed,
      createdAt: row.now,
      updatedAt: row.now,
    })
    .onConflictDoUpdate({
      target: credentials.name,
      set: { description: row.description, ...sealed, updatedAt: row.now },
    })
    .run();
}

/** The same value sealed again (under a new master key): its times stay, since the value did not change. */
export function resealCredential(tx: Writer, row: { name: string; keyId: string } & Sealed): boolean {
  const changed = tx
    .update(credentials)
    .set({ ciphertext: Buffer.from(row.ciphertext), iv: Buffer.from(row.iv), keyId: row.keyId })
    .where(eq(credentials.name, row.name))
    .returning({ name: credentials.name })
    .all();
  return changed.length === 1;
}

export function deleteCredential(tx: Writer, name: string): void {
  tx.delete(credentials).where(eq(credentials.name, name)).run();
}
