/**
 * Where a Worker's module is: beside its source in a source run (`bun src/main.ts`); inside the
 * compiled binary, the entry point `bun build --compile` embedded (package.json's build script lists
 * every worker), because there import.meta.url still names the file on the build machine's disk,
 * which need not exist where the binary runs.
 */
export function workerUrl(pathInSrc: string): string {
  if (Bun.main.startsWith("/$bunfs/")) return `/$bunfs/root/${pathInSrc}`;
  return new URL(`../${pathInSrc}`, import.meta.url).href;
}
