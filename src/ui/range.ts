/** The from/to of a usage question from the query string: instants, defaulting to the last 24 hours. */
import { parseInstant } from "../lib/instant.ts";
import type { UsageReads } from "../usage/service.ts";

export function rangeOf(
  params: URLSearchParams,
  usage: UsageReads,
): { from: number; to: number } | { error: string } {
  const read = (name: string) => {
    const text = params.get(name);
    return text === null ? undefined : parseInstant(text);
  };
  const from = read("from");
  const to = read("to");
  for (const [name, value] of [
    ["from", from],
    ["to", to],
  ] as const) {
    if (value === null) {
      return { error: `${name} must be an RFC 3339 date-time with an offset or epoch milliseconds.` };
    }
  }
  return usage.resolveRange(from ?? undefined, to ?? undefined);
}
