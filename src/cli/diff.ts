/**
 * `gatehouse diff`: what a reload of the config would change in the database it names, read with the
 * sync's own planning code on a read-only connection. Prints names and field names only, never a
 * value (a key's secret is "secret", however it changed).
 */
import { existsSync } from "node:fs";
import { ConfigError } from "../config/errors.ts";
import { loadConfigFile } from "../config/load.ts";
import { DatabaseOpenError } from "../db/open-error.ts";
import type { ObjectChanges, PartChanges, SyncChanges } from "../db/sync-changes.ts";
import { systemClock } from "../lib/clock.ts";
import type { Args, CommandSpec } from "./args.ts";
import { configArg, configFile, configFlag } from "./command.ts";
import { CliError, ExitCode } from "./errors.ts";
import { resolveOverrides } from "./overrides.ts";

const flags = {
  config: configFlag,
  db: {
    type: "string",
    value: "PATH",
    help: "the database to compare with (default: GATEHOUSE_DB, else database: in the config)",
  },
} as const;

export const spec: CommandSpec<typeof flags> = {
  name: "diff",
  usage: "[FILE] [--db PATH]",
  description:
    "Shows what a reload of the config would change in its database: the upstreams, plans, routes,\n" +
    "tenants and keys it would add (+), change (~, with the fields), remove (-) or adopt from the\n" +
    "control API (=), or the located errors for which the reload would be refused. Reads the database\n" +
    "without writing to it; prints no secret. A database that does not exist yet compares as empty.",
  args: configArg,
  flags,
  notes: [
    "exit codes: 0 no changes, 1 changes, 2 usage error, 3 config invalid or the reload would be\n" +
      "refused, 4 database unopenable",
  ],
};

export async function run(args: Args<typeof flags>): Promise<number> {
  const file = configFile("diff", args.flags.config, args.positionals);
  const overrides = resolveOverrides("diff", { db: args.flags.db }, process.env, ["db"]);
  const loaded = loadConfigFile(file);
  const path = overrides.db?.value ?? loaded.config.database ?? "./gatehouse.db";
  if (path === ":memory:") {
    throw new DatabaseOpenError(
      path,
      "an in-memory database lives only inside the gatehouse that runs it; pass --db PATH to compare with a file",
    );
  }
  // Loaded only for this command: the sync's planning reads through drizzle.
  const { openDb, openDbReadOnly } = await import("../db/open.ts");
  const { planSync } = await import("../db/sync.ts");
  const exists = existsSync(path);
  // A database that does not exist yet is compared as the empty one serve would create.
  const database = exists ? openDbReadOnly(path) : openDb(":memory:");
  let plan: ReturnType<typeof planSync>;
  try {
    plan = database.db.transaction((tx) => planSync(tx, loaded, systemClock.now()));
  } finally {
    database.close();
  }
  if (plan.issues.length) {
    throw new CliError(
      `a reload of ${file} would be refused, and change nothing:\n${new ConfigError(plan.issues).message}`,
      ExitCode.config,
    );
  }
  const lines = describe(plan.changes, plan.keys);
  const against = exists ? path : `${path} (no database there yet: compared as empty)`;
  if (lines.length === 0) {
    process.stdout.write(`${file} → ${against}: no changes\n`);
    return ExitCode.ok;
  }
  process.stdout.write(`${file} → ${against}:\n${lines.join("\n")}\n${summary(plan.changes)}\n`);
  return ExitCode.failed;
}

/** One line per object, in the order the file declares kinds: upstreams, plans, routes, tenants, keys. */
function describe(c: SyncChanges, keys: { tenantId: string; row: { id: string } }[]): string[] {
  const tenantOf = new Map(keys.map((k) => [k.row.id, k.tenantId]));
  const part = (kind: string, p: PartChanges, name = (n: string) => n) => [
    ...p.added.map((n) => `+ ${kind} ${name(n)}`),
    ...p.changed.map((n) => `~ ${kind} ${name(n)}`),
    ...p.removed.map((n) => `- ${kind} ${name(n)}`),
  ];
  const object = (kind: string, o: ObjectChanges, suffix: (id: string) => string = () => "") => [
    ...o.added.map((id) => `+ ${kind} ${id}${suffix(id)}`),
    ...Object.entries(o.changed).map(([id, fields]) => `~ ${kind} ${id}${suffix(id)}: ${fields.join(", ")}`),
    ...o.removed.map((id) => `- ${kind} ${id}`),
    ...o.adopted.map(
      (id) => `= ${kind} ${id}${suffix(id)}: adopted (made through the control API, now declared)`,
    ),
  ];
  return [
    ...part("upstream", c.upstreams),
    ...part("plan", c.plans),
    ...part("route", c.routes, (match) => JSON.stringify(match)),
    ...object("tenant", c.tenants),
    ...object("key", c.keys, (id) => (tenantOf.has(id) ? ` (tenant ${tenantOf.get(id)})` : "")),
  ];
}

function summary(c: SyncChanges): string {
  const parts = [c.upstreams, c.plans, c.routes];
  const objects = [c.tenants, c.keys];
  const count = (n: number, what: string) => (n ? [`${n} to ${what}`] : []);
  const added = [...parts, ...objects].reduce((n, x) => n + x.added.length, 0);
  const changed =
    parts.reduce((n, p) => n + p.changed.length, 0) +
    objects.reduce((n, o) => n + Object.keys(o.changed).length, 0);
  const removed = [...parts, ...objects].reduce((n, x) => n + x.removed.length, 0);
  const adopted = objects.reduce((n, o) => n + o.adopted.length, 0);
  const total = added + changed + removed + adopted;
  return `${total} ${total === 1 ? "change" : "changes"}: ${[
    ...count(added, "add"),
    ...count(changed, "change"),
    ...count(removed, "remove"),
    ...count(adopted, "adopt"),
  ].join(", ")}`;
}
