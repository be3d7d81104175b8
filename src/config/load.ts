/**
 * gateway.yaml → a validated, interpolated config, or every problem in it located by file, line and
 * column. Nothing here touches the database or the network.
 *
 * The strict load keeps every node's position so errors can be located; for a large file that costs
 * far more than the rest of start-up. When the caller can vouch for a content hash (the database
 * synced exactly this text and environment after a strict load), a native parse is enough: the same
 * content already passed every check. Any difference, even between the two parsers, changes the
 * hash and falls back to the strict load.
 */
import { createHash } from "node:crypto";
import { basename } from "node:path";
import { isPair, isScalar, isSeq, LineCounter, parseDocument, visit } from "yaml";
import { checkReferences } from "./check-references.ts";
import { ConfigError, type ConfigIssue, formatIssue, formatPath } from "./errors.ts";
import { type Env, interpolate, readsEnvironment } from "./interpolate.ts";
import { Locator } from "./locator.ts";
import { isWithin, withoutBroken } from "./prune.ts";
import { readConfigText } from "./read-file.ts";
import { GatewayConfig } from "./schema.ts";
import { pathKey, showValues } from "./show-value.ts";
import { validateSchema } from "./validate-schema.ts";

export interface LoadOptions {
  /** True when this exact content hash was strictly loaded and synced before. */
  trust?: (candidate: { hash: string; config: GatewayConfig }) => boolean;
}

export interface LoadedConfig {
  /** The file as the user named it, used in error messages. */
  readonly file: string;
  readonly config: GatewayConfig;
  /** Identifies the text and its interpolated values; a sync of the same hash has nothing to do. */
  readonly hash: string;
  /** "gateway.yaml:12": where the object at `path` is declared, for messages that name it. */
  sourceRef(path: readonly (string | number)[]): string;
  /** The line of every path in the file (see Locator.lineIndex): positions only, no values. */
  sourceLines(): Map<string, number>;
  /**
   * A problem found after loading (e.g. by the sync), located at `path` or, when the file does not
   * have it, at its nearest parent.
   */
  issue(path: readonly (string | number)[], message: string, hint?: string, atKey?: boolean): ConfigIssue;
}

export function loadConfigFile(
  file: string,
  env: Env = process.env,
  options: LoadOptions = {},
): LoadedConfig {
  const text = readConfigText(
    file,
    "check the path (give it as FILE or --config FILE), or write a starter config with gatehouse init",
  );
  return parseConfig(text, file, env, options);
}

export function parseConfig(
  text: string,
  file: string,
  env: Env = process.env,
  options: LoadOptions = {},
): LoadedConfig {
  if (options.trust) {
    const config = quickParse(text, env);
    if (config) {
      const hash = contentHash(text, config);
      if (options.trust({ hash, config })) {
        let locator: Locator | undefined;
        return { file, config, hash, ...locating(file, () => (locator ??= locatorFor(text).locator)) };
      }
    }
  }
  return strictParse(text, file, env);
}

function strictParse(text: string, file: string, env: Env): LoadedConfig {
  const { doc, lines, locator } = locatorFor(text);
  const issue = (
    path: readonly (string | number)[],
    message: string,
    hint?: string,
    atKey = false,
  ): ConfigIssue => {
    const { line, col } = locator.at(path, atKey);
    return { file, line, col, path: formatPath(path), message, hint };
  };

  if (doc.errors.length > 0) {
    throw new ConfigError(
      doc.errors.map((e) => {
        const pos = lines.linePos(e.pos[0]);
        return {
          file,
          line: pos.line,
          col: pos.col,
          path: "",
          message: yamlMessage(e.message),
          hint: yamlHint(e.code),
        };
      }),
    );
  }

  const issues: ConfigIssue[] = [];
  // Values that could not be interpolated: no later check looks at them.
  const broken: (string | number)[][] = [];
  // Interpolated scalars as written: messages about them name the variable, never its value.
  const written = new Map<string, string>();
  visit(doc, {
    Scalar(key, node, path) {
      if (key === "key" || typeof node.value !== "string") return;
      const at = pathOf(path, node);
      if (readsEnvironment(node.value)) written.set(pathKey(at), node.value);
      const r = interpolate(node.value, env);
      if ("error" in r) {
        const { line, col } = lines.linePos(node.range?.[0] ?? 0);
        issues.push({ file, line, col, path: formatPath(at), message: r.error, hint: r.hint });
        broken.push(at);
      } else node.value = r.value;
    },
  });

  const value = doc.toJS() ?? {};
  const show = showValues(written);
  const schemaIssues = validateSchema(GatewayConfig, value, show).filter(
    (s) => !broken.some((b) => isWithin(s.path, b)),
  );
  for (const s of schemaIssues) issues.push(issue(s.path, s.message, s.hint, s.atKey));

  // The reference checks run on what passed the stages before, so every problem is reported at once
  // and none that only follows from another.
  const checkable =
    issues.length === 0
      ? { value, quiet: [] }
      : withoutBroken(GatewayConfig, value, [...broken, ...schemaIssues.map((s) => s.path)]);
  if (checkable !== undefined) {
    for (const r of checkReferences(checkable.value as GatewayConfig, show)) {
      if (checkable.quiet.some((q) => isWithin(r.path, q))) continue;
      issues.push(issue(r.path, r.message, r.hint, r.atKey));
    }
  }
  if (issues.length) throw new ConfigError(inFileOrder(issues));

  const config = value as GatewayConfig;
  return { file, config, hash: contentHash(text, config), ...locating(file, () => locator) };
}

/** Sorted by position (a stable sort keeps the order of issues at one place), each once. */
function inFileOrder(issues: ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  return issues
    .filter((i) => {
      const id = formatIssue(i);
      if (seen.has(id)) return false;
      seen.add(id);
      return true;
    })
    .sort((a, b) => a.line - b.line || a.col - b.col);
}

function locating(
  file: string,
  locator: () => Locator,
): Pick<LoadedConfig, "sourceRef" | "sourceLines" | "issue"> {
  const name = basename(file);
  return {
    sourceRef: (path) => `${name}:${locator().at(path, true).line}`,
    sourceLines: () => locator().lineIndex(),
    issue: (path, message, hint, atKey = false) => {
      const { line, col } = locator().at(path, atKey);
      return { file, line, col, path: formatPath(path), message, ...(hint ? { hint } : {}) };
    },
  };
}

function locatorFor(text: string) {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  return { doc, lines, locator: new Locator(doc, lines) };
}

/**
 * Names the checks a trusted hash vouches for. Raise it whenever validation refuses something it
 * used to accept: a file synced by an earlier build is then strictly loaded once more, and its new
 * errors are reported instead of trusted away. (2: HTTP methods, duration bounds, upstream headers.)
 */
const CHECKS_REVISION = "2";

function contentHash(text: string, config: GatewayConfig): string {
  return createHash("sha256")
    .update(`checks ${CHECKS_REVISION}\0`)
    .update(text)
    .update("\0")
    .update(JSON.stringify(config))
    .digest("hex");
}

/** Bun's native parser and the same interpolation; null when anything is off (the strict load reports it). */
function quickParse(text: string, env: Env): GatewayConfig | null {
  let value: unknown;
  try {
    value = Bun.YAML.parse(text);
  } catch {
    return null;
  }
  let failed = false;
  // Only strings that reference a variable change, so the parsed tree is mended in place.
  const walk = (v: unknown): void => {
    if (v === null || typeof v !== "object") return;
    const entries = Array.isArray(v) ? v.entries() : Object.entries(v);
    for (const [k, x] of entries) {
      if (typeof x === "string") {
        if (!x.includes("${")) continue;
        const r = interpolate(x, env);
        if ("error" in r) failed = true;
        else (v as Record<string | number, unknown>)[k] = r.value;
      } else walk(x);
    }
  };
  if (text.includes("${")) walk(value);
  const config = value;
  return failed || config === null || typeof config !== "object" ? null : (config as GatewayConfig);
}

/** The key path of a scalar, from the ancestors `visit` hands over. */
function pathOf(ancestors: readonly unknown[], node: unknown): (string | number)[] {
  const out: (string | number)[] = [];
  ancestors.forEach((a, i) => {
    const child = ancestors[i + 1] ?? node;
    if (isPair(a) && isScalar(a.key)) out.push(String(a.key.value));
    else if (isSeq(a)) out.push(a.items.indexOf(child as never));
  });
  return out;
}

function yamlMessage(m: string): string {
  return m.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
}

function yamlHint(code: string): string | undefined {
  if (code === "DUPLICATE_KEY") return "each key may appear once in a mapping; remove or rename one";
  if (code === "BAD_INDENT" || code === "MISSING_CHAR")
    return "check the indentation and punctuation on this line";
  if (code === "TAB_AS_INDENT") return "indent with spaces, not tabs";
  return undefined;
}
