/** What cannot work in cluster mode refuses to, saying why: rotating one node's copy, an in-process gateway. */
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startGateway } from "../../src/app.ts";
import { gatehouseCommand } from "../support/process.ts";
import { clusterYaml, MASTER_KEY } from "./pg-support.ts";

test("rotate-master-key refuses in cluster mode: the credentials live in PostgreSQL", () => {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-rotate-"));
  try {
    writeFileSync(join(dir, "gateway.yaml"), clusterYaml("postgres://gatehouse@db.invalid/gatehouse"));
    writeFileSync(join(dir, "gatehouse.db"), "");
    writeFileSync(join(dir, "new.key"), `${Buffer.alloc(32, 9).toString("base64")}\n`);
    const r = Bun.spawnSync(
      [
        ...gatehouseCommand(),
        "rotate-master-key",
        "--config",
        join(dir, "gateway.yaml"),
        "--db",
        join(dir, "gatehouse.db"),
        "--new-key-file",
        join(dir, "new.key"),
      ],
      { cwd: dir, env: { PATH: process.env.PATH ?? "", GATEHOUSE_MASTER_KEY: MASTER_KEY } },
    );
    expect(r.stderr.toString()).toBe(
      "gatehouse rotate-master-key: in cluster mode the credentials live in PostgreSQL, and rotating them there is not supported yet; the master key stays as it is\n",
    );
    expect(r.exitCode).toBe(3);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the in-process gateway (gatehouse test) refuses cluster mode, saying what to do instead", () => {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-inprocess-"));
  try {
    writeFileSync(join(dir, "gateway.yaml"), clusterYaml("postgres://gatehouse@db.invalid/gatehouse"));
    const start = () =>
      startGateway({ configPath: join(dir, "gateway.yaml"), db: ":memory:", env: {}, log: () => {} });
    expect(start).toThrow(
      "cluster.postgres: an in-process gateway runs on its own; remove cluster: from this config, or test a running node with --target",
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
