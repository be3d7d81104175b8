/**
 * Each command declares its flags and arguments once; the same declaration parses the command line
 * (strictly: an unknown flag or an extra argument is an error with a did-you-mean) and writes the
 * command's --help.
 */
import { closest } from "../lib/closest.ts";
import { usageError } from "./errors.ts";

export interface Flag {
  type: "string" | "boolean";
  short?: string;
  /** The value's placeholder in help: FILE, HOST:PORT. */
  value?: string;
  help: string;
}

export type Flags = Record<string, Flag>;

export interface CommandSpec<F extends Flags = Flags> {
  name: string;
  /** What follows `gatehouse <name>` in the usage line. */
  usage: string;
  /** What the command does, in a few lines. */
  description: string;
  /** The positional arguments: how many, and one help line for them. */
  args: { name: string; help: string; min: number; max: number } | null;
  flags: F;
  /** Sections after the options: environment, exit codes. */
  notes?: string[];
}

export type Values<F extends Flags> = {
  [K in keyof F]?: F[K]["type"] extends "boolean" ? boolean : string;
};

export interface Args<F extends Flags> {
  flags: Values<F>;
  positionals: string[];
  help: boolean;
}

const helpFlag: Flag = { type: "boolean", short: "h", help: "show this help" };

export function parseArgs<F extends Flags>(spec: CommandSpec<F>, argv: readonly string[]): Args<F> {
  const flags: Record<string, string | boolean> = {};
  const positionals: string[] = [];
  const all: Flags = { ...spec.flags, help: helpFlag };
  const byShort = new Map(Object.entries(all).flatMap(([name, f]) => (f.short ? [[f.short, name]] : [])));
  const fail = (message: string) => usageError(spec.name, message);

  // --help wins over any mistake beside it: whoever asks for help gets it.
  const end = argv.indexOf("--");
  const options = end < 0 ? argv : argv.slice(0, end);
  if (options.includes("--help") || options.includes("-h")) return { flags: {}, positionals: [], help: true };

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const written = eq < 0 ? arg : arg.slice(0, eq);
    const name = written.startsWith("--") ? written.slice(2) : byShort.get(written.slice(1));
    const flag = name === undefined ? undefined : all[name];
    if (name === undefined || flag === undefined) {
      const guess = guessFlag(written.replace(/^-+/, ""), spec.flags);
      throw fail(`unknown flag ${written}${guess ? `; did you mean --${guess}?` : ""}`);
    }
    if (flags[name] !== undefined) throw fail(`--${name} is given twice`);
    if (flag.type === "boolean") {
      if (eq >= 0) throw fail(`--${name} takes no value`);
      flags[name] = true;
      continue;
    }
    let value: string | undefined;
    if (eq >= 0) value = arg.slice(eq + 1);
    else if (i + 1 < argv.length && !argv[i + 1]!.startsWith("-")) value = argv[++i];
    if (value === undefined) {
      throw fail(
        `--${name} needs a value (${flag.value ?? "VALUE"}; write --${name}=VALUE if it starts with -)`,
      );
    }
    flags[name] = value;
  }

  const { args } = spec;
  const max = args?.max ?? 0;
  if (positionals.length > max) {
    const extra = positionals[max]!;
    // A flag written without its dashes: `serve test-mode`.
    const guess = guessFlag(extra, spec.flags);
    const allowed =
      max === 0 ? "takes no arguments" : `takes at most ${max === 1 ? "one" : max}: ${args!.name}`;
    throw fail(
      `unexpected argument ${JSON.stringify(extra)}; ${spec.name} ${allowed}${guess ? `; did you mean --${guess}?` : ""}`,
    );
  }
  if (args && positionals.length < args.min) throw fail(`missing ${args.name}`);
  return { flags: flags as Values<F>, positionals, help: false };
}

/** The flag a word was evidently meant to be; none for a word so short that anything is close. */
function guessFlag(word: string, flags: Flags): string | undefined {
  return word.length < 3 ? undefined : closest(word, Object.keys(flags));
}

export function helpText(spec: CommandSpec): string {
  const rows: [string, string][] = [];
  for (const [name, f] of Object.entries({ ...spec.flags, help: helpFlag })) {
    const short = f.short ? `-${f.short}, ` : "    ";
    rows.push([`${short}--${name}${f.value ? ` ${f.value}` : ""}`, f.help]);
  }
  const width = Math.max(...rows.map(([left]) => left.length), spec.args?.name.length ?? 0) + 3;
  const line = (left: string, right: string) => `  ${left.padEnd(width)}${right}`.trimEnd();
  const sections = [
    `usage: gatehouse ${spec.name}${spec.usage ? ` ${spec.usage}` : ""}`,
    spec.description,
    ...(spec.args ? [`arguments:\n${line(spec.args.name, spec.args.help)}`] : []),
    `options:\n${rows.map(([l, r]) => line(l, r)).join("\n")}`,
    ...(spec.notes ?? []),
  ];
  return `${sections.join("\n\n")}\n`;
}
