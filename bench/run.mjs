// `npm run bench`: measures the spend path against the runtime's own ceiling, on this machine.
//
// Starts `wrangler dev` on loopback with a fresh local state, drives load from this separate
// Node process (autocannon for single requests, a small keep-alive client for chained ones),
// bounded in time, prints a table, writes bench/results/<timestamp>.json and stops everything it
// started. Compare ratios within one run: machines here are shared and noisy.
//
// Options (env): BENCH_SECONDS (per scenario, default 10), BENCH_CONNECTIONS (default 10),
// BENCH_HISTORY (comma list of history sizes for the flatness check, default 1000,100000,1000000),
// BENCH_PORT (default 8790).
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import autocannon from "autocannon";
import { startLocalWorker } from "../scripts/local-worker.mjs";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);
const HISTORY = (process.env.BENCH_HISTORY ?? "1000,100000,1000000").split(",").map(Number);
const PORT = Number(process.env.BENCH_PORT ?? 8790);
const BASE = `http://127.0.0.1:${PORT}`;
const KEY = "bench-admin-key";
const HEADERS = { authorization: `Bearer ${KEY}`, "content-type": "application/json" };
const DEADLINE = Date.now() + 30 * 60 * 1000; // the whole run stops within 30 minutes

for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(130));

function checkDeadline() {
  if (Date.now() > DEADLINE) throw new Error("bench: overall time limit reached");
}

async function startWorker() {
  await startLocalWorker({ port: PORT, adminKey: KEY, tag: "bench" });
}

async function api(method, path, body, key) {
  const headers = { ...HEADERS };
  if (key) headers["idempotency-key"] = key;
  const r = await fetch(`${BASE}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (r.status >= 500) throw new Error(`${method} ${path} → ${r.status}: ${text}`);
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

async function setupTeam(teamId, credits) {
  await api("PUT", `/v1/teams/${teamId}`, { name: teamId });
  const r = await api(
    "POST",
    `/v1/teams/${teamId}/grants`,
    { amount: credits, category: "paid", source: "manual" },
    `grant-${teamId}`,
  );
  if (r.status !== 201) throw new Error(`grant failed: ${JSON.stringify(r.body)}`);
}

async function pool(n, concurrency, fn) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) await fn(next++);
    }),
  );
}

let keySeq = 0;
function cannon(title, opts) {
  checkDeadline();
  return new Promise((resolve, reject) => {
    const instance = autocannon(
      {
        url: opts.path ? `${BASE}${opts.path}` : BASE,
        connections: CONNECTIONS,
        duration: SECONDS,
        headers: HEADERS,
        ...opts,
      },
      (err, result) => (err ? reject(err) : resolve(result)),
    );
    instance.on("error", reject);
    process.stderr.write(`running: ${title}\n`);
  });
}

function summarize(name, r, unitsPerRequest = 1) {
  const non2xx = r.non2xx ?? 0;
  return {
    scenario: name,
    requestsPerSecond: Math.round(r.requests.average),
    unitsPerSecond: Math.round(r.requests.average * unitsPerRequest),
    p50Ms: r.latency.p50,
    p99Ms: r.latency.p99,
    non2xx,
    errors: r.errors,
  };
}

const spendBody = JSON.stringify({ feature: "bench", amount: 1 });

function spendRequests(teamFor) {
  return [
    {
      method: "POST",
      setupRequest: (req) => {
        keySeq += 1;
        return {
          ...req,
          path: `/v1/teams/${teamFor(keySeq)}/spends`,
          headers: { ...HEADERS, "idempotency-key": `k${keySeq}` },
          body: spendBody,
        };
      },
    },
  ];
}

/** Runs `step` from `concurrency` loops for `seconds`; returns per-iteration latencies (ms). */
async function loopFor(seconds, concurrency, step) {
  const stopAt = Date.now() + seconds * 1000;
  const latencies = [];
  let failures = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      let i = 0;
      while (Date.now() < stopAt) {
        const t0 = performance.now();
        const ok = await step(worker, i++);
        latencies.push(performance.now() - t0);
        if (!ok) failures += 1;
      }
    }),
  );
  return { latencies, failures, seconds };
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

function loopSummary(name, r, unitsPerIteration = 1) {
  const sorted = [...r.latencies].sort((a, b) => a - b);
  return {
    scenario: name,
    requestsPerSecond: Math.round(r.latencies.length / r.seconds),
    unitsPerSecond: Math.round((r.latencies.length * unitsPerIteration) / r.seconds),
    p50Ms: Number(percentile(sorted, 50)?.toFixed(2)),
    p99Ms: Number(percentile(sorted, 99)?.toFixed(2)),
    non2xx: r.failures,
    errors: 0,
  };
}

async function main() {
  const machine = {
    cpus: `${cpus().length} × ${cpus()[0]?.model ?? "unknown"}`,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    date: new Date().toISOString(),
  };
  await startWorker();
  const rows = [];

  // 5 (first, as the reference): the ceiling, one RPC round trip without storage.
  await setupTeam("hot", 1_000_000_000);
  const ceiling = summarize("ceiling: RPC ping, no storage", await cannon("ceiling", { path: "/v1/teams/hot/ping" }));
  rows.push(ceiling);
  // The floor under any mutation: the same round trip plus one tiny durable commit.
  const durableCeiling = summarize(
    "ceiling: RPC ping + one durable write",
    await cannon("durable ceiling", { path: "/v1/teams/hot/ping?durable=true" }),
  );
  rows.push(durableCeiling);

  // 1. single spends on one hot team.
  const hot = summarize("spend, one hot team", await cannon("spend hot", { requests: spendRequests(() => "hot") }));
  rows.push(hot);

  // 1b. latency at half of that throughput (autocannon paces the requests).
  const halfRate = Math.max(1, Math.floor(hot.requestsPerSecond / 2));
  rows.push(
    summarize(
      `spend, one hot team, paced at ${halfRate}/s (half of max)`,
      await cannon("spend half rate", { requests: spendRequests(() => "hot"), overallRate: halfRate }),
    ),
  );

  // 2. the same spread over 1,000 teams.
  await pool(1000, 20, (i) => setupTeam(`t${i}`, 1_000_000_000));
  rows.push(
    summarize("spend, 1,000 teams", await cannon("spend spread", { requests: spendRequests((n) => `t${n % 1000}`) })),
  );

  // 3. hold + capture pairs.
  await setupTeam("holds", 1_000_000_000);
  const pairs = await loopFor(SECONDS, CONNECTIONS, async (w, i) => {
    const h = await api("POST", "/v1/teams/holds/holds", { amount: 2, ttlSeconds: 60 }, `h-${w}-${i}`);
    if (h.status !== 201) return false;
    const c = await api("POST", `/v1/teams/holds/holds/${h.body.hold.id}/capture`, { amount: 1 }, `c-${w}-${i}`);
    return c.status === 200;
  });
  rows.push(loopSummary("hold + capture pair", pairs));

  // 4. batch spends, 1,000 items a request, one team.
  await setupTeam("batch", 1_000_000_000_000);
  const items = JSON.stringify(Array.from({ length: 1000 }, () => ({ feature: "bench", amount: 1 })));
  const batch = await loopFor(SECONDS, 2, async (w, i) => {
    const r = await fetch(`${BASE}/v1/teams/batch/spends/batch`, {
      method: "POST",
      headers: { ...HEADERS, "idempotency-key": `b-${w}-${i}` },
      body: `{"mode":"all_or_nothing","items":${items}}`,
    });
    await r.arrayBuffer();
    return r.status === 200;
  });
  rows.push(loopSummary("batch spends (1,000/request)", batch, 1000));

  // 8. reads: balance and an entries page.
  rows.push(summarize("balance read", await cannon("balance", { path: "/v1/teams/hot/balance" })));
  rows.push(summarize("entries page (50)", await cannon("entries", { path: "/v1/teams/hot/entries?limit=50" })));

  // 7. outbox lag under sustained load: sample (time, last seq written, delivered seq).
  await setupTeam("lag", 1_000_000_000);
  const written = []; // [timeMs, seq]
  const delivered = []; // [timeMs, deliveredSeq]
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const r = await api("GET", "/v1/teams/lag/replication");
      delivered.push([Date.now(), r.body.deliveredSeq]);
      await sleep(50);
    }
  })();
  const lagLoad = await loopFor(SECONDS, CONNECTIONS, async (w, i) => {
    const r = await api("POST", "/v1/teams/lag/spends", { feature: "bench", amount: 1 }, `l-${w}-${i}`);
    if (r.status !== 201) return false;
    written.push([Date.now(), r.body.entries[r.body.entries.length - 1].seq]);
    return true;
  });
  let final = null;
  for (let i = 0; i < 200; i++) {
    final = (await api("GET", "/v1/teams/lag/replication")).body;
    if (final.backlog === 0) break;
    await sleep(100);
  }
  sampling = false;
  await sampler;
  const lags = written
    .map(([t, seq]) => {
      const hit = delivered.find(([dt, d]) => dt >= t && d >= seq);
      return hit ? hit[0] - t : null;
    })
    .filter((x) => x !== null)
    .sort((a, b) => a - b);
  const lastSeq = written.reduce((m, [, s]) => Math.max(m, s), 0);
  const outbox = {
    spends: lagLoad.latencies.length,
    lagP50Ms: percentile(lags, 50),
    lagP99Ms: percentile(lags, 99),
    lastSeq,
    deliveredSeq: final?.deliveredSeq ?? null,
    missingAtEnd: lastSeq - (final?.deliveredSeq ?? 0),
    samplingIntervalMs: 50,
  };

  // 6. spend p50 with growing history (seeded with 1,000-item batches).
  const flatness = [];
  await setupTeam("history", 1_000_000_000_000);
  let have = 1; // the grant entry
  for (const size of HISTORY) {
    checkDeadline();
    const need = Math.max(0, size - have);
    const seedItems = `{"mode":"all_or_nothing","items":${items}}`;
    const batches = Math.ceil(need / 1000);
    await pool(batches, 2, async (b) => {
      const r = await fetch(`${BASE}/v1/teams/history/spends/batch`, {
        method: "POST",
        headers: { ...HEADERS, "idempotency-key": `seed-${size}-${b}` },
        body: seedItems,
      });
      await r.arrayBuffer();
      if (r.status !== 200) throw new Error(`seed batch → ${r.status}`);
    });
    have += batches * 1000;
    const r = summarize(
      `spend, ${size.toLocaleString("en")} entries of history`,
      await cannon(`history ${size}`, { requests: spendRequests(() => "history"), duration: Math.min(SECONDS, 5) }),
    );
    flatness.push({ historyEntries: size, p50Ms: r.p50Ms, p99Ms: r.p99Ms, requestsPerSecond: r.requestsPerSecond });
  }

  const ratio = Number((hot.requestsPerSecond / ceiling.requestsPerSecond).toFixed(3));
  const durableRatio = Number((hot.requestsPerSecond / durableCeiling.requestsPerSecond).toFixed(3));
  const result = {
    machine,
    settings: { SECONDS, CONNECTIONS },
    rows,
    spendToCeilingRatio: ratio,
    spendToDurableCeilingRatio: durableRatio,
    outbox,
    flatness,
  };

  console.log(`\nmachine: ${machine.cpus}, ${machine.memoryGiB} GiB, node ${machine.node}, ${machine.date}`);
  console.table(rows);
  console.log(`spend / ceiling throughput ratio: ${ratio}`);
  console.log(`spend / durable-write ceiling throughput ratio: ${durableRatio}`);
  console.table(flatness);
  console.log("outbox:", outbox);
  mkdirSync("bench/results", { recursive: true });
  const file = `bench/results/${machine.date.replaceAll(":", "-")}.json`;
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`wrote ${file}`);
}

main()
  .then(() => process.exit(0))
  .catch((err) => {
    console.error(err);
    process.exit(1);
  });
