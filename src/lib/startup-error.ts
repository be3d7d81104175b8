/**
 * Why the gateway could not start, in a sentence that names the value and the fix. `config`: the
 * configuration must change (an unsafe admin listener, a sample token); `unavailable`: the machine
 * refuses what the configuration asks (an address in use).
 */
export class StartupError extends Error {
  constructor(
    message: string,
    readonly reason: "config" | "unavailable" = "config",
  ) {
    super(message);
    this.name = "StartupError";
  }
}
