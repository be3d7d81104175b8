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
import { requestIdOf } from "./request-id.ts";
import { describeErrors } from "./validation-words.ts";

export function mapError(code: string | number, error: unknown, request: Request, log?: Log): Response {
  return problemResponse(problemOf(code, error, request, log), requestIdOf(request));
}

function problemOf(code: string | number, error: unknown, request: Request, log?: Log): AdminProblem {
  if (error instanceof AdminProblem) return error;
  const fault = storeFaultOf(error);
  if (fault) {
    // A store fault the writer thread had not reported yet: the change was rolled back, not half-made.
    log?.("warn", "control API change refused: the database refuses writes", { error: String(fault) });
    return storeUnavailable(
      `The database refuses writes (${fault.code ?? "SQLite error"}); nothing was changed.`,
    );
  }
  switch (code) {
    case "VALIDATION": {
      const v = error as ValidationError;
      // A response that fails its own schema is our bug (and may be a leak): never send it.
      if (v.type === "response") break;
      return validationProblem(v, request);
    }
    case "PARSE":
      return badRequest("The request body is not valid JSON.");
    case "NOT_FOUND":
      return new AdminProblem(404, "not_found", "The control API has no such route.");
  }
  log?.("error", "control API error", { error: error instanceof Error ? error.stack : String(error) });
  return new AdminProblem(500, "internal_error", "The control API failed to handle this request.");
}

/** Names each field that failed and what it takes, in words (see validation-words.ts). */
export function validationProblem(v: ValidationError, request: Request): AdminProblem {
  if (v.type === "body") {
    const errors = describeErrors(v.all as never, (field) => field || "the body");
    return badRequest(`The request body is invalid: ${errors.join("; ")}.`, several(errors));
  }
  const kind = v.type === "params" ? "path parameter" : "query parameter";
  // A query number is checked after Elysia converted it, against the field's own schema, and the
  // error no longer says which parameter it was: the one whose text reads as the refused number.
  const field =
    v.type === "property"
      ? ([...new URL(request.url).searchParams].find(([, raw]) => Number(raw) === v.value)?.[0] ?? "")
      : undefined;
  const errors = describeErrors(v.all as never, (name) =>
    (field ?? name)
      ? `The ${kind} ${sanitize(field ?? name)}`
      : `The ${v.type === "params" ? "path" : "query"}`,
  );
  return badRequest(`${errors.join("; ")}.`, several(errors));
}

/** `errors` lists the problems only where there are several; the detail says it all otherwise. */
const several = (errors: string[]) => (errors.length > 1 ? errors : undefined);

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
export function refuseControlChars(body: unknown, query: unknown, request: Request): Response | undefined {
  for (const [where, value] of [
    ["body", body],
    ["query", query],
  ] as const) {
    const at = findControlChar(value);
    if (at) {
      return problemResponse(
        badRequest(`The request ${where} is invalid: ${at} contains a control character.`),
        requestIdOf(request),
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
