/**
 * What every browser-facing answer of both surfaces carries: a Content-Security-Policy that lets a
 * page load scripts, styles, images and data from its own origin only (no inline code, no other
 * host, never inside a frame), and the headers that stop sniffing, referrers and caching of data.
 */

const STRICT = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/**
 * Scalar (the API docs) writes its component styles into <style> elements and style attributes at run
 * time, with content that depends on the document, so they cannot be hashed ahead. Scripts stay as
 * strict as elsewhere: no inline script, no eval, nothing from another host.
 */
const DOCS = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

export const CSP = { strict: STRICT, docs: DOCS } as const;

const COMMON = {
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
};

export function pageResponse(html: string, csp: string = CSP.strict): Response {
  return new Response(html, {
    headers: {
      ...COMMON,
      "content-type": "text/html; charset=utf-8",
      "content-security-policy": csp,
      "cache-control": "no-store",
    },
  });
}

export function assetResponse(path: string, type: string): Response {
  return new Response(Bun.file(path), {
    headers: {
      ...COMMON,
      "content-type": type,
      "content-security-policy": CSP.strict,
      "cache-control": "no-cache",
    },
  });
}

/** JSON for the pages' own requests: never cached, never framed. */
export function jsonResponse(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: {
      ...COMMON,
      "content-type": "application/json",
      "cache-control": "no-store",
      "content-security-policy": CSP.strict,
      ...headers,
    },
  });
}

/** The HTML every page of a surface starts from: the page's script fills it in. */
export function shell(
  title: string,
  scripts: string[],
  style: string | null,
  prefix: string,
  root: "main" | "div" = "main",
): string {
  // Classic scripts run in order before the deferred module ones; the last script is the page's module.
  const tags = scripts.map((s, i) =>
    i === scripts.length - 1
      ? `<script type="module" src="${prefix}/${s}"></script>`
      : `<script src="${prefix}/${s}" defer></script>`,
  );
  return (
    '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">' +
    '<meta name="viewport" content="width=device-width, initial-scale=1">' +
    `<title>${title}</title><link rel="icon" href="${prefix}/icon.svg">` +
    (style ? `<link rel="stylesheet" href="${prefix}/${style}">` : "") +
    `${tags.join("")}</head><body><${root} id="app" aria-busy="true"></${root}></body></html>\n`
  );
}
