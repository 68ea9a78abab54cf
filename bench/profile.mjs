// `npm run profile [spend|batch|ping|balance]`: a CPU profile of the worker under load.
//
// Starts the worker on loopback (scripts/local-worker.mjs) with a fresh local state and its
// devtools inspector, drives one route with autocannon for PROFILE_SECONDS (default 8), records a
// V8 CPU profile through the inspector, writes bench/results/<route>.cpuprofile (open it in Chrome
// DevTools) and prints the functions with the most self time. Shares of samples, not seconds: compare within one run.
import { mkdirSync, writeFileSync } from "node:fs";
import autocannon from "autocannon";
import { startLocalWorker } from "../scripts/local-worker.mjs";
import { connectWorkerIsolate } from "./inspector.mjs";

const PORT = Number(process.env.PROFILE_PORT ?? 8796);
const INSPECTOR = PORT + 1000;
const SECONDS = Number(process.env.PROFILE_SECONDS ?? 8);
const BASE = `http://127.0.0.1:${PORT}`;
const KEY = "profile-admin-key";
const HEADERS = { authorization: `Bearer ${KEY}`, "content-type": "application/json" };
const route = process.argv[2] ?? "spend";

for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(130));

async function main() {
  await startLocalWorker({ port: PORT, adminKey: KEY, inspectorPort: INSPECTOR, tag: "profile" });
  await fetch(`${BASE}/v1/teams/hot`, { method: "PUT", headers: HEADERS, body: "{}" });
  await fetch(`${BASE}/v1/teams/hot/grants`, {
    method: "POST",
    headers: { ...HEADERS, "idempotency-key": "profile-grant" },
    body: JSON.stringify({ amount: 1_000_000_000, category: "paid", source: "manual" }),
  });

  const { send, close } = await connectWorkerIsolate(INSPECTOR);

  let seq = 0;
  const batchBody = JSON.stringify({
    mode: "all_or_nothing",
    items: Array.from({ length: 1000 }, () => ({ feature: "profile", amount: 1 })),
  });
  /**
   * Autocannon requests: POST `body` to `path`, each with a fresh Idempotency-Key.
   * @param {string} path
   * @param {string} prefix of the keys
   * @param {string} body
   * @returns {autocannon.Request[]}
   */
  const posts = (path, prefix, body) => [
    {
      method: "POST",
      setupRequest: (req) => {
        seq += 1;
        return { ...req, path, headers: { ...HEADERS, "idempotency-key": `${prefix}${seq}` }, body };
      },
    },
  ];
  const load = {
    spend: { url: BASE, requests: posts("/v1/teams/hot/spends", "p", '{"feature":"profile","amount":1}') },
    batch: { url: BASE, connections: 2, requests: posts("/v1/teams/hot/spends/batch", "b", batchBody) },
    ping: { url: `${BASE}/v1/teams/hot/ping` },
    balance: { url: `${BASE}/v1/teams/hot/balance` },
  }[route];
  if (!load) throw new Error(`unknown route ${route}: spend, batch, ping or balance`);

  await send("Profiler.enable");
  await send("Profiler.setSamplingInterval", { interval: 100 });
  await send("Profiler.start");
  /** @type {autocannon.Result} */
  const result = await new Promise((resolve, reject) =>
    autocannon({ connections: 10, duration: SECONDS, headers: HEADERS, ...load }, (err, r) =>
      err ? reject(err) : resolve(r),
    ),
  );
  const { profile } = (await send("Profiler.stop")).result;
  close();

  mkdirSync("bench/results", { recursive: true });
  writeFileSync(`bench/results/${route}.cpuprofile`, JSON.stringify(profile));
  /** @type {Map<number, number>} samples by node id */
  const hits = new Map();
  for (const sample of profile.samples) hits.set(sample, (hits.get(sample) ?? 0) + 1);
  /** @type {Map<string, number>} samples by function and place */
  const self = new Map();
  for (const node of profile.nodes) {
    const n = hits.get(node.id) ?? 0;
    if (n === 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const key = `${functionName || "(anonymous)"} ${url.split("/").pop()}:${lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + n);
  }
  const total = profile.samples.length;
  console.log(`${route}: ${Math.round(result.requests.average)} requests/s, p50 ${result.latency.p50} ms`);
  console.log(`${total} samples; top self time:`);
  for (const [key, n] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 25))
    console.log(`${((100 * n) / total).toFixed(1).padStart(5)}%  ${key}`);
}

main()
  .then(() => process.exit(0))
  .catch((err) => {
    console.error(err);
    process.exit(1);
  });
