/**
 * The methods a pattern may name: the IANA HTTP Method Registry. A name outside it is a typo, and a
 * typo in a deny rule would fail open, so patterns refuse it rather than match nothing.
 */
export const HTTP_METHODS: readonly string[] = [
  "GET",
  "HEAD",
  "POST",
  "PUT",
  "DELETE",
  "CONNECT",
  "OPTIONS",
  "TRACE",
  "PATCH",
  "ACL",
  "BASELINE-CONTROL",
  "BIND",
  "CHECKIN",
  "CHECKOUT",
  "COPY",
  "LABEL",
  "LINK",
  "LOCK",
  "MERGE",
  "MKACTIVITY",
  "MKCALENDAR",
  "MKCOL",
  "MKREDIRECTREF",
  "MKWORKSPACE",
  "MOVE",
  "ORDERPATCH",
  "PRI",
  "PROPFIND",
  "PROPPATCH",
  "QUERY",
  "REBIND",
  "REPORT",
  "SEARCH",
  "UNBIND",
  "UNCHECKOUT",
  "UNLINK",
  "UNLOCK",
  "UPDATE",
  "UPDATEREDIRECTREF",
  "VERSION-CONTROL",
];

/**
 * Registered, but the data plane refuses them (see pipeline.ts): a pattern naming one could never
 * match, so patterns refuse them too.
 */
export const NEVER_FORWARDED: readonly string[] = ["CONNECT", "TRACE"];

/**
 * The Allow header of a 405 for one of those (RFC 9110 requires one): the common methods gatehouse
 * forwards, as a hint; whether a route takes one is for its rules to say.
 */
export const ALLOW_HINT = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";
