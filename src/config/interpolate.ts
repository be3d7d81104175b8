/**
 * `${VAR}` and `${VAR:-default}` in string values, read from the environment. `$${` writes a
 * literal `${`. A missing `${VAR}` without a default is an error.
 */
export type Env = Record<string, string | undefined>;

const reference = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}|\$\{[^}]*\}?/g;

export function interpolate(text: string, env: Env): { value: string } | { error: string; hint: string } {
  if (!text.includes("${")) return { value: text };
  let error: { error: string; hint: string } | undefined;
  const value = text.replace(reference, (whole, name: string | undefined, hasDefault, fallback: string) => {
    if (whole === "$${") return "${";
    if (name === undefined) {
      error ??= {
        error: `"${whole}" is not a valid variable reference`,
        hint: "write ${NAME} or ${NAME:-default}; NAME is letters, digits and _; write $${ for a literal ${",
      };
      return "";
    }
    const v = env[name];
    if (v !== undefined && v !== "") return v;
    if (hasDefault !== undefined) return fallback;
    if (v === "") return v;
    error ??= {
      error: `environment variable ${name} is not set`,
      hint: `set ${name}, or give a default with \${${name}:-value}`,
    };
    return "";
  });
  return error ?? { value };
}

/** True when the text reads at least one variable (a `$${` escape alone reads none). */
export function readsEnvironment(text: string): boolean {
  if (!text.includes("${")) return false;
  for (const m of text.matchAll(reference)) if (m[1] !== undefined) return true;
  return false;
}

/** The text written so that interpolating it gives it back unchanged: every `${` becomes `$${`. */
export function escapeInterpolation(text: string): string {
  // A function, because "$$" in a replacement string means one "$".
  return text.replaceAll("${", () => "$${");
}
