/**
 * The session cookies. Both are httpOnly (no script reads them), SameSite=Strict (no other site's page
 * makes the browser send them) and Secure when the request came over https. Cookies are not kept
 * apart by port, so each surface has its own name and accepts only its own kind of session.
 */

export const OPERATOR_COOKIE = "gatehouse_admin";
export const PORTAL_COOKIE = "gatehouse_portal";

/** The value of cookie `name` in the request, or null (the first, if a browser sent it twice). */
export function readCookie(request: Request, name: string): string | null {
  const header = request.headers.get("cookie");
  if (!header) return null;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

/**
 * Whether the browser reached us over https: directly, or through a proxy that terminated TLS and said
 * so. Believing a false claim only marks the cookie Secure, which a plain-http browser then refuses
 * to store: it can make sign-in fail for whoever lies, never weaken it.
 */
export function cameOverHttps(request: Request): boolean {
  if (request.url.startsWith("https:")) return true;
  const forwarded = request.headers.get("x-forwarded-proto") ?? "";
  return forwarded.split(",")[0]!.trim().toLowerCase() === "https";
}

export function sessionCookie(name: string, value: string, maxAgeMs: number, secure: boolean): string {
  const maxAge = Math.max(0, Math.floor(maxAgeMs / 1000));
  return `${name}=${value}; Path=/; Max-Age=${maxAge}; HttpOnly; SameSite=Strict${secure ? "; Secure" : ""}`;
}

export const clearedCookie = (name: string, secure: boolean) => sessionCookie(name, "", 0, secure);
