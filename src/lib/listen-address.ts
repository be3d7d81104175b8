/** Where the data plane and the control API listen unless the config or a flag says otherwise. */
export const DEFAULT_LISTEN = "127.0.0.1:8080";
export const DEFAULT_ADMIN = "127.0.0.1:8081";

/** "127.0.0.1:8080" or "[::1]:8080" → hostname and port. */
export function parseListen(text: string): { hostname: string; port: number } {
  const i = text.lastIndexOf(":");
  const port = Number(text.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new Error(`"${text}" is not HOST:PORT`);
  }
  return { hostname: text.slice(0, i).replace(/^\[|\]$/g, ""), port };
}

export function formatUrl(hostname: string, port: number): string {
  return `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
}
