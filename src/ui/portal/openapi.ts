/**
 * The API reference a tenant sees in the portal: an OpenAPI document built from the config's routes,
 * keeping only the methods and paths the tenant's rules allow. A route's pattern and an allow rule's
 * are intersected segment by segment (a literal beats `:name` beats `*`; `**` takes what the other
 * has), a deny that covers the whole result removes it, and a deny that covers part of it is named in
 * the operation's description. Conditions the document cannot express (headers, query parameters,
 * token scopes) are described in words.
 */

import pkg from "../../../package.json" with { type: "json" };
import { covers, type PathPattern } from "../../gateway/pattern.ts";
import type { CompiledRoute, CompiledRule, Snapshot, TenantView } from "../../gateway/snapshot.ts";

type Segment = PathPattern["segments"][number];
interface Shape {
  segments: readonly Segment[];
  globstar: boolean;
}

/** What `*` in a pattern's methods stands for in the document. */
const DOC_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"] as const;

/** The segments both patterns match, or null when no path matches both. */
export function intersect(a: Shape, b: Shape): Shape | null {
  const fixedA = a.globstar ? a.segments.length - 1 : a.segments.length;
  const fixedB = b.globstar ? b.segments.length - 1 : b.segments.length;
  const out: Segment[] = [];
  for (let i = 0; i < Math.max(fixedA, fixedB); i++) {
    const sa = i < fixedA ? a.segments[i]! : null;
    const sb = i < fixedB ? b.segments[i]! : null;
    if (sa && sb) {
      const both = meet(sa, sb);
      if (!both) return null;
      out.push(both);
    } else if (sa) {
      if (!b.globstar) return null;
      out.push(sa);
    } else if (sb) {
      if (!a.globstar) return null;
      out.push(sb);
    }
  }
  const globstar = a.globstar && b.globstar;
  if (globstar) out.push({ kind: "globstar" });
  return { segments: out, globstar };
}

function meet(a: Segment, b: Segment): Segment | null {
  if (a.kind === "globstar" || b.kind === "globstar") return null;
  if (a.kind === "literal" && b.kind === "literal") return a.value === b.value ? a : null;
  if (a.kind === "literal") return a;
  if (b.kind === "literal") return b;
  return a.kind === "param" ? a : b;
}

const asPattern = (shape: Shape, method: string): PathPattern => ({
  text: "",
  methods: new Set([method]),
  segments: shape.segments,
  globstar: shape.globstar,
  rank: [],
});

const methodsOf = (p: PathPattern) => (p.methods === null ? [...DOC_METHODS] : [...p.methods]);

interface Operation {
  method: string;
  template: string;
  params: { name: string; description: string }[];
  notes: Set<string>;
  route: CompiledRoute;
}

/** `/v1/items/{id}` and its path parameters; a route's `:tenant` segment is the tenant itself. */
function template(shape: Shape, route: CompiledRoute, tenant: string) {
  const params: Operation["params"] = [];
  let stars = 0;
  const parts = shape.segments.map((s, i) => {
    if (s.kind === "literal") return s.value;
    if (i === route.tenantSegment) return tenant;
    if (s.kind === "param") {
      params.push({ name: s.name, description: "One path segment." });
      return `{${s.name}}`;
    }
    if (s.kind === "star") {
      const name = `segment${++stars}`;
      params.push({ name, description: "Any one path segment." });
      return `{${name}}`;
    }
    params.push({ name: "path", description: "The rest of the path: any number of segments." });
    return "{path}";
  });
  return { template: `/${parts.join("/")}`, params };
}

function conditions(rule: CompiledRule): string[] {
  const out: string[] = [];
  for (const p of rule.predicates) {
    const what = p.where === "header" ? `header ${p.name}` : `query parameter ${p.name}`;
    out.push(p.values === null ? `needs the ${what}` : `needs the ${what} to be ${p.values.join(" or ")}`);
  }
  if (rule.scope) out.push(`needs a token with scope ${rule.scope}`);
  return out;
}

export function portalOperations(snapshot: Snapshot, tenant: TenantView): Operation[] {
  const rules = tenant.rules;
  const allows = rules.filter((r) => r.effect === "allow");
  const denies = rules.filter((r) => r.effect === "deny" && !r.shadow);
  const found = new Map<string, Operation>();
  for (const route of snapshot.routes) {
    for (const allow of allows) {
      const shape = intersect(route.pattern, allow.pattern);
      if (!shape) continue;
      for (const method of methodsOf(route.pattern)) {
        if (allow.pattern.methods !== null && !allow.pattern.methods.has(method)) continue;
        const candidate = asPattern(shape, method);
        // A deny with conditions refuses only some requests: it never removes an operation.
        const whole = denies.find(
          (d) => d.predicates.length === 0 && d.scope === null && covers(d.pattern, candidate),
        );
        if (whole) continue;
        const { template: path, params } = template(shape, route, tenant.id);
        const id = `${method} ${path}`;
        const op = found.get(id) ?? { method, template: path, params, notes: new Set<string>(), route };
        for (const c of conditions(allow)) op.notes.add(`Allowed when it ${c}.`);
        for (const d of denies) {
          const methods = d.pattern.methods;
          if (methods !== null && !methods.has(method)) continue;
          if (intersect(d.pattern, shape)) op.notes.add(`Except ${d.pattern.text}, which is refused.`);
        }
        found.set(id, op);
      }
    }
  }
  return [...found.values()];
}

const problem = (description: string) => ({
  description,
  content: { "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } } },
});

/** The OpenAPI 3.1 document of what the tenant may call. */
export function portalDocument(snapshot: Snapshot, tenant: TenantView, dataUrl: string) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of portalOperations(snapshot, tenant)) {
    const cost = op.route.costFrom
      ? "Its cost is measured from the response."
      : op.route.cost === 1
        ? ""
        : `Costs ${op.route.cost} units.`;
    const description = [cost, ...op.notes].filter(Boolean).join(" ");
    paths[op.template] ??= {};
    paths[op.template]![op.method.toLowerCase()] = {
      summary: `${op.method} ${op.template}`,
      ...(description ? { description } : {}),
      parameters: op.params.map((p) => ({
        name: p.name,
        in: "path",
        required: true,
        description: p.description,
        schema: { type: "string" },
      })),
      responses: {
        "200": { description: "The API's answer." },
        "400": problem("A path gatehouse refuses to forward."),
        "401": problem("A missing, unknown, expired or revoked key."),
        "403": problem("A request your plan's rules do not allow."),
        "429": problem("Rate limited or quota exhausted; Retry-After says when to try again."),
      },
    };
  }
  return {
    openapi: "3.1.0",
    info: {
      title: `API reference for ${tenant.name}`,
      version: String(snapshot.version),
      description:
        "The operations your plan allows. Send your API key in `X-API-Key` or `Authorization: Bearer`. " +
        "Every answer carries `RateLimit` and `RateLimit-Policy` headers; errors are " +
        "`application/problem+json`.",
      "x-gatehouse-version": pkg.version,
    },
    servers: [{ url: dataUrl, description: "The API gateway." }],
    security: [{ apiKey: [] }, { bearer: [] }],
    paths,
    components: {
      securitySchemes: {
        apiKey: { type: "apiKey", in: "header", name: "X-API-Key" },
        bearer: { type: "http", scheme: "bearer" },
      },
      schemas: {
        Problem: {
          type: "object",
          properties: {
            type: { type: "string" },
            title: { type: "string" },
            status: { type: "integer" },
            detail: { type: "string" },
            request_id: { type: "string" },
          },
        },
      },
    },
  };
}
