/**
 * Settings a test run takes from the shell (seeds, run counts). Vite passes only VITE_-prefixed
 * variables into the workerd runtime the tests run in, as `import.meta.env`.
 */
const viteEnv = (import.meta as ImportMeta & { env?: Record<string, string | boolean | undefined> }).env ?? {};

/** A VITE_ variable's value; undefined when unset or empty. */
export function envString(name: string): string | undefined {
  const v = viteEnv[name];
  return typeof v === "string" && v !== "" ? v : undefined;
}
