// `npm run bench:stalls [path|spend]`: what the worker's isolates were doing while requests stalled.
//
// Starts the worker (scripts/local-worker.mjs) with its inspector, records a V8 CPU profile of our
// isolate and of Miniflare's entry isolate while an open-loop client sends GET <path> (default
// /healthz; `spend` sends POST spends of 1 credit to one team) at STALLS_RATE requests/s (default
// 700) for STALLS_SECONDS (default 6), and prints, for the stretches in which requests took more
// than STALLS_THRESHOLD_MS (default 8), what the profiles sampled in those windows. V8 profile
// timestamps and process.hrtime are both the system's monotonic clock, so the windows line up.
// It also polls each isolate's heap every 20 ms: the growth between collections, per request, is
// what the isolate allocates. Nothing is asserted: this explains a tail, it is no test.
import { startLocalWorker } from "../scripts/local-worker.mjs";
import { connectInspector, inspectorTargets } from "./inspector.mjs";
import { openLoop } from "./open-loop.mjs";

const SPEND = process.argv[2] === "spend";
const PATH = SPEND ? "/v1/teams/stalls/spends" : (process.argv[2] ?? "/healthz");
const RATE = Number(process.env.STALLS_RATE ?? 700);
const SECONDS = Number(process.env.STALLS_SECONDS ?? 6);
const THRESHOLD_MS = Number(process.env.STALLS_THRESHOLD_MS ?? 8);
const KEY = "stalls-admin-key";
const INSPECTOR_PORT = Number(process.env.STALLS_INSPECTOR_PORT ?? 9338);

for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(130));

/**
 * The open-loop run; returns the requests slower than the threshold and the count.
 * @param {string} base
 */
async function drive(base) {
  /** @type {Record<string, string>} */
  const headers = { authorization: `Bearer ${KEY}` };
  if (SPEND) headers["content-type"] = "application/json";
  const records = await openLoop({
    base,
    rate: RATE,
    seconds: SECONDS,
    make: (i) =>
      SPEND
        ? {
            method: "POST",
            path: PATH,
            headers: { ...headers, "idempotency-key": `s${i}` },
            body: '{"feature":"stalls","amount":1}',
          }
        : { path: PATH, headers },
  });
  const slow = records.filter((r) => r.latencyMs > THRESHOLD_MS).map((r) => ({ atMs: r.atMs, latency: r.latencyMs }));
  return { slow, total: records.length };
}

async function main() {
  const worker = await startLocalWorker({ adminKey: KEY, tag: "stalls", inspectorPort: INSPECTOR_PORT });
  if (SPEND) {
    const headers = { authorization: `Bearer ${KEY}`, "content-type": "application/json" };
    await fetch(`${worker.base}/v1/teams/stalls`, { method: "PUT", headers, body: "{}" });
    const g = await fetch(`${worker.base}/v1/teams/stalls/grants`, {
      method: "POST",
      headers: { ...headers, "idempotency-key": "stalls-grant" },
      body: JSON.stringify({ amount: 1_000_000_000, category: "paid", source: "manual" }),
    });
    if (g.status !== 201) throw new Error(`grant → ${g.status}`);
  }
  const targets = await inspectorTargets(INSPECTOR_PORT);
  const isolates = await Promise.all(
    targets.filter((t) => /core:(user|entry)/.test(t.title)).map((t) => connectInspector(t)),
  );
  const heapBefore = [];
  for (const isolate of isolates) {
    await isolate.send("Profiler.enable");
    await isolate.send("Profiler.setSamplingInterval", { interval: 200 });
    heapBefore.push((await isolate.send("Runtime.getHeapUsage")).result);
    await isolate.send("Profiler.start");
  }
  // Heap polling: growth between collections is allocation; a drop is a collection.
  const allocated = isolates.map(() => 0);
  const collections = isolates.map(() => 0);
  const lastUsed = heapBefore.map((h) => h.usedSize);
  let polling = true;
  const poller = (async () => {
    while (polling) {
      await Promise.all(
        isolates.map(async (isolate, k) => {
          const used = (await isolate.send("Runtime.getHeapUsage")).result.usedSize;
          if (used < lastUsed[k]) collections[k] += 1;
          else allocated[k] += used - lastUsed[k];
          lastUsed[k] = used;
        }),
      );
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const clockStartUs = Number(process.hrtime.bigint() / 1000n);
  const { slow, total } = await drive(worker.base);
  polling = false;
  await poller;

  // Stalls: slow requests less than 5 ms apart belong to one stretch.
  const stretches = [];
  for (const s of slow.sort((a, b) => a.atMs - b.atMs)) {
    const last = stretches[stretches.length - 1];
    if (last && s.atMs - last.endMs < 5) last.endMs = Math.max(last.endMs, s.atMs + s.latency);
    else stretches.push({ startMs: s.atMs, endMs: s.atMs + s.latency });
  }
  console.log(
    `GET ${PATH} at ${RATE}/s for ${SECONDS} s: ${total} requests, ${slow.length} over ${THRESHOLD_MS} ms, in ${stretches.length} stretches`,
  );
  for (const [k, isolate] of isolates.entries()) {
    const { profile } = (await isolate.send("Profiler.stop")).result;
    const names = new Map(profile.nodes.map((n) => [n.id, n.callFrame.functionName || "(anonymous)"]));
    let t = profile.startTime;
    /** @type {Map<string | undefined, number>} samples inside stalls by function name */
    const inStalls = new Map();
    let all = 0;
    let stalled = 0;
    for (const [j, sample] of profile.samples.entries()) {
      t += profile.timeDeltas[j] ?? 0;
      const ms = (t - clockStartUs) / 1000;
      all += 1;
      if (!stretches.some((s) => ms >= s.startMs && ms <= s.endMs)) continue;
      stalled += 1;
      const name = names.get(sample);
      inStalls.set(name, (inStalls.get(name) ?? 0) + 1);
    }
    const top = [...inStalls]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 5)
      .map(([name, n]) => `${name} ${((100 * n) / Math.max(1, stalled)).toFixed(0)}%`)
      .join(", ");
    console.log(
      `  ${isolate.name}: ${all} samples, ${stalled} inside stalls: ${top || "none"}; allocates ~${(allocated[k] / total / 1024).toFixed(1)} KiB a request, ${collections[k]} collections seen`,
    );
    isolate.close();
  }
  console.log(
    `  stretches (start ms + length ms): ${stretches.map((s) => `${s.startMs.toFixed(0)}+${(s.endMs - s.startMs).toFixed(0)}`).join(" ")}`,
  );
  worker.stop();
}

main()
  .then(() => process.exit(0))
  .catch((err) => {
    console.error(err);
    process.exit(1);
  });
