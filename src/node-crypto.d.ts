/**
 * The one part of node:crypto the worker uses (nodejs_compat provides it in workerd): a
 * synchronous, native SHA-256. Declared here rather than through @types/node, whose Node globals
 * would clash with the Workers runtime's own types.
 */
declare module "node:crypto" {
  interface Hash {
    update(data: string, inputEncoding?: "utf8"): Hash;
    digest(encoding: "hex"): string;
  }
  export function createHash(algorithm: "sha256"): Hash;
}
