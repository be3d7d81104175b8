/**
 * Requests to the page's own server. Changes carry the session's CSRF token; a 401 means the session
 * ended (idle, expired, signed out, revoked), and the page goes back to signing in.
 */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export class Api {
  csrf: string | null = null;

  constructor(private readonly onUnauthorized: () => void) {}

  get<T>(path: string): Promise<T> {
    return this.request<T>("GET", path);
  }

  send<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    return this.request<T>(method, path, body, headers);
  }

  private async request<T>(
    method: string,
    path: string,
    body?: unknown,
    extra: Record<string, string> = {},
  ): Promise<T> {
    const headers: Record<string, string> = { accept: "application/json", ...extra };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (method !== "GET" && this.csrf) headers["x-csrf-token"] = this.csrf;
    const res = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    const data = text ? JSON.parse(text) : undefined;
    if (!res.ok) {
      if (res.status === 401 && !("authorization" in extra)) this.onUnauthorized();
      throw new ApiError(res.status, data?.detail ?? `${res.status} ${res.statusText}`);
    }
    return data as T;
  }
}

/** The server's clock: test mode's may be anywhere in time, so ranges are never taken from the browser's. */
export class ServerClock {
  private base = 0;
  private at = 0;

  set(iso: string): void {
    this.base = Date.parse(iso);
    this.at = performance.now();
  }

  now(): number {
    return this.base + (performance.now() - this.at);
  }
}
