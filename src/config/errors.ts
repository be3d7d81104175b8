/** A located problem in a config file, printed as `file:line:col path: message`. */
export interface ConfigIssue {
  file: string;
  line: number;
  col: number;
  /** Where in the document, e.g. `plans.free.limits[0].window`; empty for the whole file. */
  path: string;
  message: string;
  hint?: string;
}

export function formatIssue(i: ConfigIssue): string {
  const where = `${i.file}:${i.line}:${i.col}`;
  const head = i.path ? `${where} ${i.path}: ${i.message}` : `${where}: ${i.message}`;
  return i.hint ? `${head}\n  hint: ${i.hint}` : head;
}

export class ConfigError extends Error {
  constructor(readonly issues: ConfigIssue[]) {
    super(issues.map(formatIssue).join("\n"));
    this.name = "ConfigError";
  }
}

/** `["plans", "free", "limits", 0]` → `plans.free.limits[0]` */
export function formatPath(path: readonly (string | number)[]): string {
  let out = "";
  for (const p of path) {
    if (typeof p === "number") out += `[${p}]`;
    else out += out ? `.${p}` : p;
  }
  return out;
}
