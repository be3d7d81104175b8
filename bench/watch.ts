/**
 * `bun bench/watch.ts`: how often the config watcher wakes while SQLite writes beside the config
 * file, watching the directory (as gatehouse did) against watching the file (as it does now). Each
 * wake-up is a callback on the event loop; the usage writer commits several times a second under
 * load, and every commit writes the WAL and its index.
 */
import { Database } from "bun:sqlite";
import { watch as fsWatch, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startConfigWatch } from "../src/config/watch.ts";

const COMMITS = 200;
const dir = mkdtempSync(join(tmpdir(), "gatehouse-bench-watch-"));
const config = join(dir, "gateway.yaml");
writeFileSync(config, "version: 1\n");

let directory = 0;
const dirWatch = fsWatch(dir, { persistent: false }, () => directory++);
let file = 0;
const stop = startConfigWatch(config, () => {}, {
  watch: (target, listener) =>
    fsWatch(target, { persistent: false }, (event) => {
      file++;
      listener(event);
    }),
});

const db = new Database(join(dir, "gatehouse.db"));
db.exec("PRAGMA journal_mode = WAL");
db.exec("CREATE TABLE t (x BLOB)");
const insert = db.prepare("INSERT INTO t VALUES (?)");
const row = new Uint8Array(200);
for (let i = 0; i < COMMITS; i++)
  db.transaction(() => {
    for (let k = 0; k < 100; k++) insert.run(row);
  })();
db.close();
// Events arrive asynchronously: give the last ones time to land before counting.
await Bun.sleep(200);
dirWatch.close();
stop();
rmSync(dir, { recursive: true, force: true });
console.log(`config watcher wake-ups during ${COMMITS} SQLite commits beside gateway.yaml:`);
console.log(`  watching the directory (before): ${directory}`);
console.log(`  watching the file (now):         ${file}`);
