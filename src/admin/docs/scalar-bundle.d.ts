/** Imported `with { type: "file" }`: Bun hands over a path, embedded in the binary by `bun build --compile`. */
declare module "@scalar/api-reference/browser/standalone.js" {
  const path: string;
  export default path;
}
