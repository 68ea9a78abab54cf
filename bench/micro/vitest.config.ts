// `npm run bench:micro`: the storage and ledger floors measured inside workerd, with the same
// pool and bindings as the tests (see ../../vitest.config.ts). Prints timings; asserts nothing
// about them (timed assertions would fail on a busy machine, not on a slow ledger).
import { defineConfig, mergeConfig } from "vitest/config";
import base from "../../vitest.config";

export default defineConfig(async (env) =>
  mergeConfig(await (typeof base === "function" ? base(env) : base), {
    test: { include: ["bench/micro/**/*.micro.ts"], testTimeout: 300_000 },
  }),
);
