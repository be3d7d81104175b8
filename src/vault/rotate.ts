/**
 * `gatehouse rotate-master-key`: every stored credential re-encrypted under a new master key, in one
 * transaction that commits only after each new ciphertext has been read back and decrypted to the
 * value it held. Any failure rolls back, leaving every credential under the old key.
 */
import type { OpenDb } from "../db/open.ts";
import { auditLog } from "../db/schema.ts";
import type { Clock } from "../lib/clock.ts";
import { DecryptError, importMasterKey, MAKE_A_KEY, open, seal } from "./crypto.ts";
import type { FoundKey } from "./master-key.ts";
import { resealCredential, type SealedRow, sealedRows, storedKeyIds } from "./store.ts";
import { Vault } from "./vault.ts";

/** Rotation refused for a reason other than the old key (which is a MasterKeyError); nothing changed. */
export class RotationError extends Error {}

export interface Rotation {
  credentials: number;
  oldKeyId: string | null;
  newKeyId: string;
}

export async function rotateMasterKey(
  database: OpenDb,
  oldKey: FoundKey | null,
  newKey: FoundKey,
  clock: Clock,
): Promise<Rotation> {
  // The old key must be the stored credentials' one (MasterKeyError otherwise).
  Vault.open(database.db, oldKey);
  if (oldKey && oldKey.id === newKey.id) {
    throw new RotationError(`the new key is the master key already in use; ${MAKE_A_KEY}`);
  }
  const rows = sealedRows(database.db);
  const rotation = { credentials: rows.length, oldKeyId: oldKey?.id ?? null, newKeyId: newKey.id };
  if (rows.length === 0) return rotation;

  const before = await importMasterKey(oldKey!.raw);
  const after = await importMasterKey(newKey.raw);
  const values = new Map<string, string>();
  for (const row of rows) values.set(row.name, await decrypt(before, row, "the current master key"));
  const resealed = await Promise.all(
    rows.map(async (r) => ({ name: r.name, ...(await seal(after, r.name, values.get(r.name)!)) })),
  );

  const { sqlite, db } = database;
  // Held across the awaits below: no other writer may add a credential under the old key meanwhile.
  sqlite.run("BEGIN IMMEDIATE");
  try {
    const current = sealedRows(db);
    if (current.length !== rows.length || current.some((r, i) => !sameRow(r, rows[i]!))) {
      throw new RotationError(
        "credentials changed while the rotation ran; nothing was changed, run it again",
      );
    }
    for (const r of resealed) resealCredential(db, { ...r, keyId: after.id });
    // Read back what will be committed: every value must come out exactly as it went in.
    for (const row of sealedRows(db)) {
      if ((await decrypt(after, row, "the new master key")) !== values.get(row.name)) {
        throw new RotationError(
          `credential "${row.name}" did not survive re-encryption; nothing was changed`,
        );
      }
    }
    if (storedKeyIds(db).some((id) => id !== after.id)) {
      throw new RotationError("a credential is still under the old key; nothing was changed, run it again");
    }
    db.insert(auditLog)
      .values({
        ts: clock.now(),
        actor: "cli:rotate-master-key",
        action: "vault.rotate_master_key",
        objectType: "vault",
        objectId: after.id,
        before: JSON.stringify({ keyId: rotation.oldKeyId }),
        after: JSON.stringify({ keyId: after.id, credentials: rows.length }),
      })
      .run();
    sqlite.run("COMMIT");
  } catch (err) {
    sqlite.run("ROLLBACK");
    throw err;
  }
  return rotation;
}

async function decrypt(key: Awaited<ReturnType<typeof importMasterKey>>, row: SealedRow, which: string) {
  try {
    return await open(key, row.name, row);
  } catch (err) {
    if (!(err instanceof DecryptError)) throw err;
    throw new RotationError(
      `credential "${row.name}" cannot be decrypted with ${which} (it was altered or moved from another name); ` +
        `nothing was changed. Store it again (PUT /credentials/${row.name}) or delete it, then rotate`,
    );
  }
}

const sameRow = (a: SealedRow, b: SealedRow) =>
  a.name === b.name && Buffer.from(a.ciphertext).equals(Buffer.from(b.ciphertext));
