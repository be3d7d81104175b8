import type { Database, Statement } from "bun:sqlite";

/** One quota counter as persisted: absolute units used by `scope` in the period starting at `periodStart`. */
export interface QuotaRow {
  readonly scope: string;
  readonly periodStart: number;
  readonly used: number;
}

/**
 * Where quota counters survive restarts. Writes carry absolute values, never increments, so writing
 * the same counter twice (a retried or repeated flush) cannot count anything twice.
 */
export interface QuotaStore {
  /** Rows whose period started at or after `since` (epoch ms). */
  load(since: number): QuotaRow[];
  /** Stores every row, replacing what is held for its (scope, periodStart); all or nothing. */
  save(rows: readonly QuotaRow[], updatedAt: number): void;
}

/** The in-memory twin, for tests and ephemeral runs. */
export class MemoryQuotaStore implements QuotaStore {
  readonly rows = new Map<string, QuotaRow & { updatedAt: number }>();
  /** How many times `save` was called, so tests can see flushes. */
  saves = 0;

  load(since: number): QuotaRow[] {
    return [...this.rows.values()]
      .filter((r) => r.periodStart >= since)
      .map(({ scope, periodStart, used }) => ({ scope, periodStart, used }));
  }

  save(rows: readonly QuotaRow[], updatedAt: number): void {
    this.saves++;
    for (const r of rows) this.rows.set(`${r.scope}\0${r.periodStart}`, { ...r, updatedAt });
  }

  get(scope: string, periodStart: number): number | undefined {
    return this.rows.get(`${scope}\0${periodStart}`)?.used;
  }
}

/**
 * Table `quota_usage(scope, period_start, used, updated_at)`, created by the migrations, which must
 * have run before this is constructed (the statements are prepared here, once).
 */
export class SqliteQuotaStore implements QuotaStore {
  private readonly upsert: Statement;
  private readonly select: Statement;
  private readonly write: (rows: readonly QuotaRow[], updatedAt: number) => void;

  constructor(db: Database) {
    this.upsert = db.query(
      "INSERT INTO quota_usage (scope, period_start, used, updated_at) VALUES (?1, ?2, ?3, ?4) " +
        "ON CONFLICT (scope, period_start) DO UPDATE SET used = excluded.used, updated_at = excluded.updated_at",
    );
    this.select = db.query("SELECT scope, period_start, used FROM quota_usage WHERE period_start >= ?1");
    this.write = db.transaction((rows: readonly QuotaRow[], updatedAt: number) => {
      for (const r of rows) this.upsert.run(r.scope, r.periodStart, r.used, updatedAt);
    });
  }

  load(since: number): QuotaRow[] {
    return (this.select.all(since) as { scope: string; period_start: number; used: number }[]).map((r) => ({
      scope: r.scope,
      periodStart: r.period_start,
      used: r.used,
    }));
  }

  save(rows: readonly QuotaRow[], updatedAt: number): void {
    if (rows.length > 0) this.write(rows, updatedAt);
  }
}
