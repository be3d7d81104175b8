/** A config or scenario file's text, or a located error saying why it cannot be read. */
import { readFileSync } from "node:fs";
import { ConfigError } from "./errors.ts";

export function readConfigText(file: string, missingHint?: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError([
      {
        file,
        line: 1,
        col: 1,
        path: "",
        message: code === "ENOENT" ? "file not found" : `cannot read the file (${code ?? String(err)})`,
        hint: code === "ENOENT" ? missingHint : undefined,
      },
    ]);
  }
}
