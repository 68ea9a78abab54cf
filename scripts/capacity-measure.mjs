// `npm run capacity:measure`: measures what a spend costs this project inside workerd
// (bench/micro/capacity-costs.micro.ts, run alone through the bench's vitest config) and writes the
// figures, with the date and the machine, to bench/costs.json, which `npm run capacity` reads as
// its defaults. Takes about 20 s; the figures are counts and sizes, not timings, so they do not
// depend on how busy the machine is (the two wall times recorded beside them do).
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { fileURLToPath } from "node:url";

const MARKER = "CAPACITY_COSTS_JSON ";
const root = fileURLToPath(new URL("..", import.meta.url));
const out = fileURLToPath(new URL("../bench/costs.json", import.meta.url));

const run = spawnSync(
  "npx",
  ["vitest", "run", "--config", "bench/micro/vitest.config.ts", "bench/micro/capacity-costs.micro.ts"],
  { cwd: root, encoding: "utf8", env: { ...process.env, VITE_CONFIG_NATIVE_IGNORE_WARNING: "true" } },
);
const output = `${run.stdout ?? ""}\n${run.stderr ?? ""}`;
const line = output.split("\n").find((l) => l.includes(MARKER));
if (run.status !== 0 || line === undefined) {
  console.error(output);
  console.error(`capacity:measure: the measurement failed (exit ${run.status}); bench/costs.json is unchanged`);
  process.exit(1);
}
const figures = JSON.parse(line.slice(line.indexOf(MARKER) + MARKER.length));
const costs = {
  measuredAt: new Date().toISOString(),
  machine: {
    cpus: `${cpus().length} × ${cpus()[0]?.model ?? "unknown"}`,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    runtime: "workerd through @cloudflare/vitest-pool-workers (miniflare, local D1)",
  },
  command: "npm run capacity:measure (bench/micro/capacity-costs.micro.ts)",
  ...figures,
};
writeFileSync(out, `${JSON.stringify(costs, null, 2)}\n`);
console.log(`wrote ${out}`);
console.log(JSON.stringify(costs, null, 2));
