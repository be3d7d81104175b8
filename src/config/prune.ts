/**
 * The config with its broken values taken out, so that the reference checks can still run on the
 * rest: `validate` then reports every problem in one run, and none that only follows from another
 * (a reference check never sees a value that failed its schema or its interpolation).
 *
 * A broken value goes with the nearest part of the document that may be missing: an optional key,
 * a list item, a map entry. List items leave a hole instead of moving up, so every path and index
 * the checks report is still the file's. Upstreams and plans are named by other declarations, so a
 * broken one is replaced by a stand-in that passes every check: a route naming it is not reported
 * as pointing at nothing.
 */
import type { TSchema } from "@sinclair/typebox";
import { compiledCheck } from "./validate-schema.ts";

type Path = readonly (string | number)[];
type Container = Record<string | number, unknown>;

const standIns: Record<string, () => unknown> = {
  upstreams: () => ({ mock: "echo" }),
  plans: () => ({}),
};

export interface Pruned {
  /** The config without the broken values, holes left in lists. */
  value: unknown;
  /**
   * Objects that lost an optional key: a check of one would judge something the author did not
   * write (a key that lost its broken `hash:` has neither secret nor hash), so issues in them are
   * dropped.
   */
  quiet: Path[];
}

/** Undefined when what remains does not pass the schema (nothing above a broken value could lose it). */
export function withoutBroken(schema: TSchema, value: unknown, broken: readonly Path[]): Pruned | undefined {
  const copy = structuredClone(value);
  const quiet: Path[] = [];
  for (const path of broken) {
    const cut = removable(schema, path);
    if (cut === undefined) return undefined;
    const at = path.slice(0, cut.length);
    // The top level's keys are checked each on its own.
    if (cut.kind === "optional" && at.length > 1) quiet.push(at.slice(0, -1));
    remove(copy, at, cut.kind === "named entry");
  }
  return compiledCheck(schema)(compact(copy)) ? { value: copy, quiet } : undefined;
}

/** Whether `path` is `base` or lies under it. */
export function isWithin(path: Path, base: Path): boolean {
  return base.length <= path.length && base.every((p, i) => String(p) === String(path[i]));
}

interface Cut {
  /** How much of the path names the part to remove. */
  length: number;
  /** A "named entry" is a map entry under a name the schema accepts: a stand-in may keep the name. */
  kind: "optional" | "item" | "entry" | "named entry" | "unknown";
}

/**
 * The longest prefix of `path` that names something removable (an optional key, an unknown key, a
 * list item or a map entry), walking the schema down from the root; undefined when nothing on the
 * way is.
 */
function removable(schema: TSchema, path: Path): Cut | undefined {
  let node: TSchema | undefined = schema;
  let cut: Cut | undefined;
  for (let i = 0; i < path.length; i++) {
    const step = path[i]!;
    node = branchFor(node, step);
    if (!node) break;
    if (typeof step === "number" && node.items) {
      cut = { length: i + 1, kind: "item" };
      node = node.items as TSchema;
    } else if (node.properties && Object.hasOwn(node.properties, step)) {
      if (!((node.required as string[] | undefined) ?? []).includes(step as string)) {
        cut = { length: i + 1, kind: "optional" };
      }
      node = (node.properties as Record<string, TSchema>)[step];
    } else if (node.patternProperties) {
      const [pattern, values] = Object.entries(node.patternProperties as Record<string, TSchema>)[0]!;
      cut = { length: i + 1, kind: new RegExp(pattern).test(String(step)) ? "named entry" : "entry" };
      node = values;
    } else {
      // A key the schema does not know.
      return { length: i + 1, kind: "unknown" };
    }
  }
  return cut;
}

/** In a union, the branch that has the next step; the node itself otherwise. */
function branchFor(node: TSchema | undefined, step: string | number): TSchema | undefined {
  if (!node?.anyOf) return node;
  return (node.anyOf as TSchema[]).find((b) =>
    typeof step === "number"
      ? b.items !== undefined
      : (b.properties && Object.hasOwn(b.properties, step)) || b.patternProperties !== undefined,
  );
}

function remove(root: unknown, path: Path, namedEntry: boolean): void {
  let parent: unknown = root;
  for (const p of path.slice(0, -1)) {
    if (parent === null || typeof parent !== "object") return;
    parent = (parent as Container)[p];
  }
  if (parent === null || typeof parent !== "object") return;
  const last = path.at(-1)!;
  if (!Object.hasOwn(parent, last)) return;
  const standIn = namedEntry && path.length === 2 ? standIns[String(path[0])] : undefined;
  if (standIn) (parent as Container)[last] = standIn();
  // On a list this leaves a hole: the items after it keep their indices.
  else delete (parent as Container)[last];
}

/** The same value with the holes closed, to check against the schema. */
function compact(value: unknown): unknown {
  if (Array.isArray(value)) return value.flatMap((v) => [compact(v)]);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, compact(v)]));
  }
  return value;
}
