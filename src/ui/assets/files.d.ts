/** Imported `with { type: "file" }`: Bun hands over a path, embedded in the binary by `bun build --compile`. */
declare module "*.bundle.js" {
  const path: string;
  export default path;
}
declare module "*.bundle.css" {
  const path: string;
  export default path;
}
declare module "*.svg" {
  const path: string;
  export default path;
}
