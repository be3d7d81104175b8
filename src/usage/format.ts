/** Record encodings for exports: CSV per RFC 4180 (CRLF, header row) and NDJSON (one object per line). */

export type Cell = string | number | null;

export const EXPORT_FORMATS = ["csv", "ndjson"] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** Quotes a field only when it holds a comma, a double quote, CR or LF; quotes inside are doubled. */
export function csvField(v: Cell): string {
  if (v === null) return "";
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csvLine(cells: readonly Cell[]): string {
  let line = "";
  for (let i = 0; i < cells.length; i++) {
    if (i > 0) line += ",";
    const v = cells[i]!;
    line += typeof v === "number" ? String(v) : csvField(v);
  }
  return `${line}\r\n`;
}

export function ndjsonLine(columns: readonly string[], cells: readonly Cell[]): string {
  const o: Record<string, Cell> = {};
  for (let i = 0; i < columns.length; i++) o[columns[i]!] = cells[i]!;
  return `${JSON.stringify(o)}\n`;
}

export const contentTypes: Record<ExportFormat, string> = {
  csv: "text/csv; charset=utf-8; header=present",
  ndjson: "application/x-ndjson",
};
