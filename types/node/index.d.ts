// Deliberately empty. tsconfig.json (the worker, its tests and bench/micro) lists this folder
// first in "typeRoots", so a library's `/// <reference types="node" />` (vite's, reached through
// vitest; undici's, through miniflare) resolves here instead of to node_modules/@types/node: the
// worker's programs get the Workers runtime's globals only, never Node's, which clash with them
// (see src/node-crypto.d.ts). @types/node is installed for tsconfig.scripts.json, which checks
// the Node scripts in scripts/ and bench/.
//
// With custom typeRoots, tsc looks up the "types" entries of tsconfig.json only in those roots
// (the second one is ./node_modules), so an entry names a folder with an index.d.ts or a file:
// hence "@cloudflare/vitest-pool-workers/types/cloudflare-test" rather than the package's
// "./types" export.
