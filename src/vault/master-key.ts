/**
 * Where the master key comes from, in order: GATEHOUSE_MASTER_KEY (its base64), GATEHOUSE_MASTER_KEY_FILE
 * (a path), or `vault.masterKeyFile` in gateway.yaml. The key itself is never in gateway.yaml, which
 * people commit, nor on a command line, which other users of the machine can read.
 */
import { readFileSync } from "node:fs";
import type { Env } from "../config/interpolate.ts";
import type { GatewayConfig } from "../config/schema.ts";
import { decodeMasterKey, keyId, MAKE_A_KEY } from "./crypto.ts";

export const KEY_VAR = "GATEHOUSE_MASTER_KEY";
export const KEY_FILE_VAR = "GATEHOUSE_MASTER_KEY_FILE";

/**
 * The master key is missing, malformed or not the one the credentials were stored with. Start-up and
 * rotate-master-key stop with this message (one line) and exit code 3, having changed nothing.
 */
export class MasterKeyError extends Error {}

export const MASTER_KEY_EXIT = 3;

/** The raw key and where it was read from, for messages. */
export interface FoundKey {
  readonly raw: Uint8Array;
  readonly id: string;
  readonly from: string;
}

/** Null when no source is configured: gatehouse runs without a vault until a credential is stored. */
export function findMasterKey(env: Env, config: Pick<GatewayConfig, "vault">): FoundKey | null {
  const value = env[KEY_VAR];
  const file = env[KEY_FILE_VAR];
  if (value && file) {
    throw new MasterKeyError(`both ${KEY_VAR} and ${KEY_FILE_VAR} are set; set one of them`);
  }
  if (value) return decoded(value, KEY_VAR);
  const path = file || config.vault?.masterKeyFile;
  if (!path) return null;
  return readKeyFile(path, file ? `${KEY_FILE_VAR} (${path})` : `vault.masterKeyFile (${path})`);
}

/** A key file: its base64 on one line, as `gatehouse new-master-key` prints it. "-" reads stdin. */
export function readKeyFile(path: string, from = path): FoundKey {
  let text: string;
  try {
    text = readFileSync(path === "-" ? 0 : path, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new MasterKeyError(`the master key file ${from} cannot be read (${code}); ${MAKE_A_KEY}`);
  }
  return decoded(text, from);
}

function decoded(text: string, from: string): FoundKey {
  const raw = decodeMasterKey(text);
  // Never quote the text: it may be the real key with a typo in it.
  if ("error" in raw) throw new MasterKeyError(`the master key in ${from} ${raw.error}; ${MAKE_A_KEY}`);
  return { raw, id: keyId(raw), from };
}
