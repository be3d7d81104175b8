/**
 * Why an upstream request failed, as a closed list (a metrics label and a log field), read from the
 * error's code, which the HTTP/1.1 client (http1/) and Bun's fetch give alike. Checked against real
 * sockets (test/gateway/upstream-failures.test.ts): a closed port is ECONNREFUSED; a connection
 * closed or reset before a complete answer ECONNRESET; https to a plain-HTTP port EPROTO; an
 * untrusted certificate its OpenSSL name (DEPTH_ZERO_SELF_SIGNED_CERT, CERT_HAS_EXPIRED, ...); an
 * unknown host ENOTFOUND; a response the client refuses to read (malformed, or a head over 64 KiB)
 * HPE_INVALID_RESPONSE or HPE_HEADER_OVERFLOW. A body that breaks off after the headers fails its
 * read, so the stage tells it apart from a connection that never answered.
 */

export const UPSTREAM_FAILURES = [
  "connection_refused",
  "connection_reset",
  "dns",
  "tls",
  "first_byte_timeout",
  "idle_timeout",
  "body_interrupted",
  "invalid_response",
  "other",
] as const;
export type UpstreamFailure = (typeof UPSTREAM_FAILURES)[number];

/** Before the response headers arrived, or while reading the body after them. */
export type FailureStage = "headers" | "body";

export function classifyUpstreamFailure(
  err: unknown,
  stage: FailureStage,
  timedOut: boolean,
): UpstreamFailure {
  if (timedOut) return stage === "headers" ? "first_byte_timeout" : "idle_timeout";
  const code = errorCode(err) ?? "";
  if (code.startsWith("HPE_")) return "invalid_response";
  if (stage === "body") return "body_interrupted";
  if (code === "ECONNREFUSED" || code === "ConnectionRefused") return "connection_refused";
  if (/^(ECONNRESET|ConnectionClosed|EPIPE|ECONNABORTED)$/.test(code)) return "connection_reset";
  if (/^(ENOTFOUND|EAI_|DNS)/.test(code)) return "dns";
  if (/^EPROTO$|CERT|TLS|SSL|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|HOSTNAME/.test(code)) return "tls";
  return "other";
}

/**
 * The error's code when it is a plain identifier (ECONNREFUSED): safe to log. Never the message,
 * which may name the upstream's URL.
 */
export function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^[A-Za-z0-9_]{1,64}$/.test(code) ? code : undefined;
}
