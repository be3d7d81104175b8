/**
 * The admin listener is served by Bun.serve, not by Elysia's own listen, so Elysia cannot see the
 * peer address. The listener records it against the Request object before handing the request over;
 * a WeakMap keeps it off the headers, where a client could forge it.
 */
const addresses = new WeakMap<Request, string>();

export function setClientIp(request: Request, ip: string | null | undefined): void {
  if (ip) addresses.set(request, ip);
}

export function clientIp(request: Request): string {
  return addresses.get(request) ?? "unknown";
}

/** Who made a change, for the audit log. */
export const actorOf = (request: Request) => `admin@${clientIp(request)}`;
