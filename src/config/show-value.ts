/**
 * How an error message shows a value from the config. A value written in the file is quoted; a value
 * that came from the environment is named by the variable reference it was written as, so no
 * message (and no log or GET /config that repeats it) ever echoes a secret.
 */
export type ValuePath = readonly (string | number)[];

export interface ShowValue {
  /** `"text"`, or `the value of ${VAR}` for an interpolated value. */
  (path: ValuePath, value: unknown): string;
  /** True when the value at `path` was interpolated: messages must not quote any part of it. */
  fromEnv(path: ValuePath): boolean;
}

/** For values that never came from the environment (control API bodies, tests). */
export const showWritten: ShowValue = Object.assign(
  (_path: ValuePath, value: unknown) => JSON.stringify(value),
  {
    fromEnv: () => false,
  },
);

/** One spelling per path, whether an index came as a number or as a string (as in `a/0` pointers). */
export const pathKey = (path: ValuePath): string => JSON.stringify(path.map(String));

/** `written` maps pathKey(path) to each interpolated scalar's text as written in the file. */
export function showValues(written: ReadonlyMap<string, string>): ShowValue {
  const show = (path: ValuePath, value: unknown) => {
    const source = written.get(pathKey(path));
    if (source === undefined) return JSON.stringify(value);
    // A lone reference reads best bare; anything around it is quoted as written.
    return /^\$\{[^}]*\}$/.test(source) ? `the value of ${source}` : `the value of ${JSON.stringify(source)}`;
  };
  return Object.assign(show, { fromEnv: (path: ValuePath) => written.has(pathKey(path)) });
}
