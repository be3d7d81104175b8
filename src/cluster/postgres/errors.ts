/** How a change to the shared objects can fail, for the control API to answer (409 and 503). */

/** The change cannot be made as the node judged it; the message is safe to show. */
export class SharedConflictError extends Error {
  override readonly name = "SharedConflictError";
}

/** PostgreSQL cannot be reached; nothing was changed. The message is safe to show. */
export class SharedUnavailableError extends Error {
  override readonly name = "SharedUnavailableError";
}
