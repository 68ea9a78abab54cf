// The two node modules the dependency-rule test reads the source with (test/domain runs in Node).
// Declared here, as src/node-crypto.d.ts does for the worker, so the type-check never takes in
// Node's globals (see README, Project layout).
declare module "node:fs" {
  export function readdirSync(
    path: string,
    options: { withFileTypes: true },
  ): { name: string; isDirectory(): boolean }[];
  export function readFileSync(path: string, encoding: "utf8"): string;
}
declare module "node:path" {
  export function join(...parts: string[]): string;
}
