/**
 * The one boundary where failures become problem+json: the services' AdminProblems, Elysia's own
 * errors (validation, parse, not found) and bugs. Messages name the field and the rule, never the
 * value sent, so a secret pasted into the wrong field is not echoed back.
 */

import { SQLiteError } from "bun:sqlite";
import type { ValidationError } from "elysia";
import { classifyStoreError } from "../db/store-health.ts";
import type { Log } from "../lib/log.ts";
import { findControlChar, MAX_NESTING, nestedDeeperThan, sanitize } from "./fields.ts";
import { AdminProblem, badRequest, problemResponse, storeUnavailable } from "./problem.ts";

const MAX_LISTED = 10;

export function mapError(code: string | number, error: unknown, log?: Log): Response {
  if (error instanceof AdminProblem) return problemResponse(error);
  const fault = storeFaultOf(error);
  if (fault) {
    // A store fault the writer thread had not reported yet: the change was rolled back, not half-made.
    log?.("warn", "control API change refused: the database refuses writes", { error: String(fault) });
    return problemResponse(
      storeUnavailable(`The database refuses writes (${fault.code ?? "SQLite error"}); nothing was changed.`),
    );
  }
  switch (code) {
    case "VALIDATION": {
      const v = error as ValidationError;
      // A response that fails its own schema is our bug (and may be a leak): never send it.
      if (v.type === "response") break;
      const errors = v.all
        .slice(0, MAX_LISTED)
        .map((e) => `${v.type}${"path" in e && e.path ? sanitize(e.path, 100) : ""}: ${e.message}`);
      return problemResponse(badRequest(`The request ${v.type} is invalid: ${errors.join("; ")}.`, errors));
    }
    case "PARSE":
      return problemResponse(badRequest("The request body is not valid JSON."));
    case "NOT_FOUND":
      return problemResponse(new AdminProblem(404, "not_found", "The control API has no such route."));
  }
  log?.("error", "control API error", { error: error instanceof Error ? error.stack : String(error) });
  return problemResponse(
    new AdminProblem(500, "internal_error", "The control API failed to handle this request."),
  );
}

/** The SQLite error (drizzle wraps it as `cause`) that says the database cannot be written now. */
function storeFaultOf(error: unknown): SQLiteError | undefined {
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    if (e instanceof SQLiteError) return classifyStoreError(e) === "other" ? undefined : e;
  }
  return undefined;
}

/**
 * Ids, names and metadata reach headers, logs and YAML: no control characters anywhere in a body or
 * query, whatever the field's own schema says.
 */
export function refuseControlChars(body: unknown, query: unknown): Response | undefined {
  for (const [where, value] of [
    ["body", body],
    ["query", query],
  ] as const) {
    const at = findControlChar(value);
    if (at) {
      return problemResponse(
        badRequest(`The request ${where} is invalid: ${at} contains a control character.`),
      );
    }
  }
  return undefined;
}

/**
 * Runs after parsing and before validation (Elysia's transform stage): everything after it walks
 * the body recursively, so a deeper one is refused here. Throws: a transform cannot answer.
 */
export function refuseDeepNesting(body: unknown, query: unknown): void {
  for (const [where, value] of [
    ["body", body],
    ["query", query],
  ] as const) {
    if (nestedDeeperThan(value, MAX_NESTING)) {
      throw badRequest(
        `The request ${where} is nested too deeply: at most ${MAX_NESTING} levels of arrays and objects.`,
      );
    }
  }
}
