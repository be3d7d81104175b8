/**
 * Where a Worker's module is: beside its source in a source run (`bun src/main.ts`); inside the
 * compiled binary, the entry point `bun build --compile` embedded (package.json's build script lists
 * every worker). There import.meta.url names the chunk this module was bundled into, which code
 * splitting puts at the bundle's root, while each entry keeps its place under the root.
 */
export function workerUrl(pathInSrc: string): string {
  if (Bun.main.startsWith("/$bunfs/")) return `/$bunfs/root/${pathInSrc}`;
  return new URL(`../${pathInSrc}`, import.meta.url).href;
}
