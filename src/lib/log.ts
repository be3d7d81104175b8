/** Structured logs: one JSON object per line on stderr, so stdout stays free for command output. */

/** Most severe first: a log level lets through its own lines and those before it. */
export const LOG_LEVELS = ["error", "warn", "info", "debug"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type Log = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void;

export const isLogLevel = (s: string): s is LogLevel => (LOG_LEVELS as readonly string[]).includes(s);

/** Writes every line it is given; wrap it in a LevelFilter to apply a level. */
export const jsonLog: Log = (level, msg, fields) => {
  process.stderr.write(`${JSON.stringify({ ts: new Date().toISOString(), level, msg, ...fields })}\n`);
};

export const silentLog: Log = () => {};

/** Passes on the lines at its level or more severe; the level can change while running (a reload). */
export class LevelFilter {
  private rank: number;

  constructor(
    private readonly out: Log,
    level: LogLevel = "info",
  ) {
    this.rank = LOG_LEVELS.indexOf(level);
  }

  get level(): LogLevel {
    return LOG_LEVELS[this.rank]!;
  }

  set level(level: LogLevel) {
    this.rank = LOG_LEVELS.indexOf(level);
  }

  readonly log: Log = (level, msg, fields) => {
    if (LOG_LEVELS.indexOf(level) <= this.rank) this.out(level, msg, fields);
  };
}
