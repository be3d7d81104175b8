/**
 * Corrections to what @elysiajs/openapi generates, so the document describes the API exactly and
 * suits code generators. Applied once, to a copy, before the spec is served:
 * - every error response is application/problem+json with the one Problem schema;
 * - every operation lists the guard's own answers (400 for a bad Host, 401, 415, 421, 429, and 403
 *   for methods that change something), whoever wrote it;
 * - a 204 has no content (the plugin writes an invalid `content: { type: "void" }`);
 * - a body whose fields are all optional may be left out (`required: false`);
 * - GET /export answers YAML, GET /usage/export CSV or NDJSON;
 * - an integer query parameter is an integer (the plugin shows Elysia's string-or-integer coercion);
 * - request bodies and parameters carry their schema's first example as `example`;
 * - the named schemas (components.ts) become components/schemas, referred to with $ref wherever the
 *   plugin inlined a copy.
 */

import { unwrapSchema } from "@elysiajs/openapi/openapi";
import type { TSchema } from "@sinclair/typebox";

type Obj = Record<string, unknown>;

const CONTENT_TYPES: Record<string, Record<string, string>> = {
  "/export": { "application/yaml": "gateway.yaml text" },
  "/usage/export": { "text/csv": "format=csv", "application/x-ndjson": "format=ndjson" },
};

const GUARD = [
  ["400", "A missing or malformed Host header, or an invalid request (problem+json)"],
  ["401", "Unauthorized (problem+json)"],
  ["415", "A request body that is not application/json (problem+json)"],
  ["421", "A Host that does not name this listener (problem+json)"],
  ["429", "Too Many Requests (problem+json)"],
] as const;

const CROSS_SITE = ["403", "A change sent by another site's web page (problem+json)"] as const;

const REF_PREFIX = "#/components/schemas/";
const ref = (name: string) => ({ $ref: `${REF_PREFIX}${name}` });

const obj = (v: unknown): Obj | undefined =>
  v && typeof v === "object" && !Array.isArray(v) ? (v as Obj) : undefined;

export function fixSpec(generated: Obj, components: Record<string, TSchema>): Obj {
  // A JSON copy: the plugin's objects share nodes with the schemas routes validate with.
  const spec = JSON.parse(JSON.stringify(generated)) as Obj;
  for (const [path, item] of Object.entries(obj(spec.paths) ?? {})) {
    for (const [method, value] of Object.entries(obj(item) ?? {})) {
      const op = obj(value);
      if (op) fixOperation(path, method, op);
    }
  }
  const named = namedForms(components);
  // fixOperation pointed every error response at Problem.
  const used = new Set<string>(["Problem"]);
  spec.paths = replaceNamed(spec.paths, named, used, null);
  const schemas: Obj = { ...(obj(obj(spec.components)?.schemas) ?? {}) };
  // Components refer to each other too; the ones found along the way are added in turn.
  const done = new Set<string>();
  for (let pending = [...used]; pending.length > 0; pending = [...used].filter((n) => !done.has(n))) {
    for (const name of pending) {
      done.add(name);
      schemas[name] = replaceNamed(named.byName.get(name), named, used, name);
    }
  }
  spec.components = { ...obj(spec.components), schemas: sortedKeys(schemas) };
  return spec;
}

function fixOperation(path: string, method: string, op: Obj): void {
  const responses = obj(op.responses) ?? {};
  op.responses = responses;
  // `security: []` marks the one route the token guard lets through (GET /healthz).
  const open = Array.isArray(op.security) && op.security.length === 0;
  const writes = method !== "get" && method !== "head";
  const guard = open ? GUARD.slice(0, 1) : writes ? [...GUARD, CROSS_SITE] : GUARD;
  for (const [status, description] of guard) responses[status] ??= { description };
  for (const [status, value] of Object.entries(responses)) {
    const response = obj(value);
    if (!response) continue;
    const code = Number(status);
    if (code === 204) delete response.content;
    else if (code >= 400) response.content = { "application/problem+json": { schema: ref("Problem") } };
    else if (code < 300 && CONTENT_TYPES[path]) {
      const schema = Object.values(obj(response.content) ?? {}).map((m) => obj(m)?.schema)[0];
      response.content = Object.fromEntries(
        Object.entries(CONTENT_TYPES[path]).map(([type, description]) => [
          type,
          { schema: { ...obj(schema), description } },
        ]),
      );
    }
  }
  const body = obj(op.requestBody);
  const media = obj(obj(body?.content)?.["application/json"]);
  const schema = obj(media?.schema);
  if (body && media && schema) {
    if (!(schema.required as unknown[] | undefined)?.length && !schema.minProperties) body.required = false;
    const examples = schema.examples as unknown[] | undefined;
    if (examples?.length) media.example = examples[0];
  }
  for (const p of (op.parameters as Obj[] | undefined) ?? []) {
    const variants = obj(p.schema)?.anyOf as Obj[] | undefined;
    const number = variants?.find((v) => v.type === "integer" || v.type === "number");
    if (number) p.schema = number;
    const examples = obj(p.schema)?.examples as unknown[] | undefined;
    if (examples?.length) p.example = examples[0];
  }
}

interface Named {
  byName: Map<string, Obj>;
  byContent: Map<string, string>;
}

/** Each named schema as the plugin writes it into the document, and its canonical text. */
function namedForms(components: Record<string, TSchema>): Named {
  const byName = new Map<string, Obj>();
  const byContent = new Map<string, string>();
  for (const [name, schema] of Object.entries(components)) {
    const form = JSON.parse(JSON.stringify(unwrapSchema(schema, undefined, "output"))) as Obj;
    byName.set(name, form);
    byContent.set(canonical(form), name);
  }
  return { byName, byContent };
}

/**
 * A copy of `node` with every subschema that is a named schema replaced by its $ref (and a named
 * schema made nullable by `anyOf [$ref, null]`); `self` is the component being written, which must not
 * refer to itself.
 */
function replaceNamed(node: unknown, named: Named, used: Set<string>, self: string | null): unknown {
  if (Array.isArray(node)) return node.map((n) => replaceNamed(n, named, used, self));
  const o = obj(node);
  if (!o) return node;
  const name = named.byContent.get(canonical(o));
  if (name !== undefined && name !== self) {
    used.add(name);
    return ref(name);
  }
  if (Array.isArray(o.type) && o.type.length === 2 && o.type.includes("null")) {
    const nonNull = o.type.find((t) => t !== "null");
    const inner = named.byContent.get(canonical({ ...o, type: nonNull }));
    if (inner !== undefined && inner !== self) {
      used.add(inner);
      return { anyOf: [ref(inner), { type: "null" }] };
    }
  }
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, replaceNamed(v, named, used, self)]));
}

function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v) => (obj(v) ? sortedKeys(v as Obj) : v));
}

function sortedKeys(o: Obj): Obj {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
