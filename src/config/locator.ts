import { type Document, isMap, isPair, isScalar, isSeq, type LineCounter, type Node } from "yaml";

/** Finds where a path into the document is written, so errors can name a line and column. */
export class Locator {
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  /** 1-based line and column of the value at `path` (or of its key), or of its deepest existing parent. */
  at(path: readonly (string | number)[], atKey = false): { line: number; col: number } {
    let node: unknown = this.doc.contents;
    let keyNode: unknown;
    for (const p of path) {
      if (isMap(node)) {
        const pair = node.items.find(
          (it) => isPair(it) && isScalar(it.key) && String(it.key.value) === String(p),
        );
        if (!pair) break;
        keyNode = pair.key;
        node = pair.value;
      } else if (isSeq(node) && typeof p === "number" && node.items[p]) {
        keyNode = undefined;
        node = node.items[p];
      } else break;
    }
    const target = (atKey && keyNode ? keyNode : node) as Node | null | undefined;
    const offset = target?.range?.[0] ?? 0;
    return this.lines.linePos(offset);
  }

  /**
   * The line of every path in the document (a map entry's key, a list item's value), keyed as
   * `lineKey` keys them: positions only, none of the values, so it may be kept where the document
   * (which holds every value written in the file) may not.
   */
  lineIndex(): Map<string, number> {
    const out = new Map<string, number>();
    const walk = (node: unknown, path: (string | number)[]) => {
      if (isMap(node)) {
        for (const it of node.items) {
          if (!isPair(it) || !isScalar(it.key)) continue;
          const at = [...path, String(it.key.value)];
          out.set(lineKey(at), this.lines.linePos(it.key.range?.[0] ?? 0).line);
          walk(it.value, at);
        }
      } else if (isSeq(node)) {
        node.items.forEach((item, i) => {
          const at = [...path, i];
          out.set(lineKey(at), this.lines.linePos((item as Node | null)?.range?.[0] ?? 0).line);
          walk(item, at);
        });
      }
    };
    walk(this.doc.contents, []);
    return out;
  }
}

/** How `Locator.lineIndex` keys a path. */
export const lineKey = (path: readonly (string | number)[]): string => path.join("\u0000");
