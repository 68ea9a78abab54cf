// `npm run bench`: measures the spend path against the runtime's own ceiling, on this machine.
//
// Starts the bundled worker on loopback (scripts/local-worker.mjs: workerd through Miniflare, in a
// child process, fresh local state), drives load from this separate Node process (autocannon for
// the maximum rate, an evenly paced open-loop client for latency at a fixed rate, a small
// keep-alive client for chained requests), bounded in time, prints tables, writes
// bench/results/<timestamp>.json and stops everything it started. Compare ratios within one run:
// machines here are shared and noisy.
//
// Two placements of the local state, because a local durable commit is an fsync to this disk:
// "disk" (the OS temp folder) for every scenario, and "memory" (/dev/shm, when there is one) for
// the ceilings, the hot spend and the batch, which shows what our code costs once the disk is out.
//
// Options (env): BENCH_SECONDS (per scenario, default 10), BENCH_CONNECTIONS (default 10),
// BENCH_HISTORY (comma list of history sizes for the flatness check, default 1000,100000,1000000),
// BENCH_MEMORY (0 skips the memory placement), BENCH_PRICED_ROUNDS (alternating plain / priced
// rounds whose median ratio is the priced spend's cost, default 5), BENCH_PEER_ROUNDS (alternating
// rounds of our spend, our one-durable-write ping and a Node + PostgreSQL peer's spend, default 5;
// bench/peer/; BENCH_PEER_POOL its pool, default 10; BENCH_PEER_PIPELINE=1 its pg pipeline mode),
// BENCH_ONLY=peer (only that comparison), BENCH_ONLY=spread (spends spread over 1,000 teams: spends/s,
// D1 statements and the lag to D1, with HISTORY_DELIVERY=direct and then through the queue).
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import autocannon from "autocannon";
import pg from "pg";
import { startLocalWorker } from "../scripts/local-worker.mjs";
import { openLoop } from "./open-loop.mjs";
import { checkTeam, SCHEMA, seedTeam } from "./peer/ledger.mjs";
import { findPostgres, INSTALL_HINT, startPostgres } from "./peer/postgres.mjs";
import { startPeerServer } from "./peer/server.mjs";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);
const HISTORY = (process.env.BENCH_HISTORY ?? "1000,100000,1000000").split(",").map(Number);
const MEMORY_DIR = "/dev/shm";
/** Alternating plain / priced rounds for their ratio (BENCH_PRICED_ROUNDS, default 5, odd for a median). */
const PRICED_ROUNDS = Number(process.env.BENCH_PRICED_ROUNDS ?? 5);
const WITH_MEMORY = process.env.BENCH_MEMORY !== "0" && existsSync(MEMORY_DIR);
/** Alternating rounds of ours, our durable ping and the PostgreSQL peer (BENCH_PEER_ROUNDS, default 5). */
const PEER_ROUNDS = Number(process.env.BENCH_PEER_ROUNDS ?? 5);
/** BENCH_ONLY=peer runs only the comparison with the PostgreSQL peer. */
const ONLY = process.env.BENCH_ONLY ?? "";
let BASE = "";
let stopWorker = () => {};
const KEY = "bench-admin-key";
const HEADERS = { authorization: `Bearer ${KEY}`, "content-type": "application/json" };
const DEADLINE = Date.now() + 30 * 60 * 1000; // the whole run stops within 30 minutes

for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(130));

function checkDeadline() {
  if (Date.now() > DEADLINE) throw new Error("bench: overall time limit reached");
}

/**
 * The parts of GET replication's answer read here.
 * @typedef {{ deliveredSeq: number, backlog: number }} Replication
 */

/**
 * Starts a fresh worker (state on disk, or in memory) and points every helper at it.
 * @param {"disk" | "memory"} placement
 */
async function startWorker(placement) {
  stopWorker();
  if (placement === "memory") process.env.LOCAL_PERSIST_DIR = MEMORY_DIR;
  else delete process.env.LOCAL_PERSIST_DIR;
  const worker = await startLocalWorker({ adminKey: KEY, tag: `bench-${placement}` });
  BASE = worker.base;
  stopWorker = worker.stop;
}

/**
 * One request with the admin key; throws on a 5xx. `body` is the JSON answer, typed where it is
 * read as the API documents it (null when the answer is empty).
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body] sent as JSON
 * @param {string} [key] the Idempotency-Key
 * @returns {Promise<{ status: number, body: unknown }>}
 */
async function api(method, path, body, key) {
  /** @type {Record<string, string>} */
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

/**
 * @param {string} teamId
 * @param {number} credits paid
 */
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

/**
 * Runs fn(0) … fn(n − 1) from `concurrency` loops.
 * @param {number} n
 * @param {number} concurrency
 * @param {(i: number) => Promise<unknown>} fn
 */
async function pool(n, concurrency, fn) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) await fn(next++);
    }),
  );
}

let keySeq = 0;
/**
 * One autocannon run against the current worker; `opts.path` is appended to its URL.
 * @param {string} title
 * @param {Partial<autocannon.Options> & { path?: string }} opts
 * @returns {Promise<autocannon.Result>}
 */
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

/**
 * One row of the results table.
 * @typedef {object} Row
 * @property {string} scenario
 * @property {number} requestsPerSecond
 * @property {number} unitsPerSecond
 * @property {number} p50Ms
 * @property {number} p99Ms
 * @property {number} non2xx
 * @property {number} errors
 */

/**
 * A table row from an autocannon result.
 * @param {string} name
 * @param {autocannon.Result} r
 * @param {number} [unitsPerRequest]
 * @returns {Row}
 */
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
/** The same spend priced by the price book (feature "bench-priced", 1 credit a request). */
const pricedSpendBody = JSON.stringify({ feature: "bench-priced" });

/**
 * Autocannon requests: spends of 1 credit, each with a fresh Idempotency-Key, on teamFor(n).
 * @param {(n: number) => string} teamFor
 * @param {string} [body] the spend's JSON body
 * @returns {autocannon.Request[]}
 */
function spendRequests(teamFor, body = spendBody) {
  return [
    {
      method: "POST",
      setupRequest: (req) => {
        keySeq += 1;
        return {
          ...req,
          path: `/v1/teams/${teamFor(keySeq)}/spends`,
          headers: { ...HEADERS, "idempotency-key": `k${keySeq}` },
          body,
        };
      },
    },
  ];
}

/**
 * What loopFor measured: one latency (ms) an iteration, the iterations whose step said false.
 * @typedef {{ latencies: number[], failures: number, seconds: number }} LoopResult
 */

/**
 * Runs `step` from `concurrency` loops for `seconds`; returns per-iteration latencies (ms).
 * @param {number} seconds
 * @param {number} concurrency
 * @param {(worker: number, i: number) => Promise<boolean>} step true when the iteration succeeded
 * @returns {Promise<LoopResult>}
 */
async function loopFor(seconds, concurrency, step) {
  const stopAt = Date.now() + seconds * 1000;
  /** @type {number[]} */
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

/**
 * @param {number[]} sorted ascending
 * @param {number} p 0 to 100
 */
function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/**
 * A table row from a loopFor result.
 * @param {string} name
 * @param {LoopResult} r
 * @param {number} [unitsPerIteration]
 * @returns {Row}
 */
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

/**
 * Latency at a fixed rate (bench/open-loop.mjs), summarized.
 * @param {string} name
 * @param {number} rate requests a second
 * @param {number} seconds
 * @param {(i: number) => import("./open-loop.mjs").LoadRequest & { key?: string }} make `key`: the
 *   request's Idempotency-Key
 */
async function paced(name, rate, seconds, make) {
  checkDeadline();
  process.stderr.write(`running: ${name}\n`);
  const records = await openLoop({
    base: BASE,
    rate,
    seconds,
    make: (i) => {
      const { key, ...rest } = make(i);
      return { ...rest, headers: key ? { ...HEADERS, "idempotency-key": key } : { ...HEADERS } };
    },
  });
  const failures = records.filter((r) => r.status === 0 || r.status >= 300).length;
  const latencies = records.map((r) => r.latencyMs);
  const sorted = latencies.sort((a, b) => a - b);
  return {
    scenario: name,
    ratePerSecond: rate,
    requests: sorted.length,
    p50Ms: Number(percentile(sorted, 50)?.toFixed(2)),
    p90Ms: Number(percentile(sorted, 90)?.toFixed(2)),
    p99Ms: Number(percentile(sorted, 99)?.toFixed(2)),
    maxMs: Number(sorted[sorted.length - 1]?.toFixed(2)),
    failures,
  };
}

/**
 * The reference trio (ceiling, durable ceiling, hot spend) and their ratios, on the current worker.
 * @param {string} placement
 * @param {Row[]} rows the table, added to
 */
async function ceilings(placement, rows) {
  await setupTeam("hot", 1_000_000_000);
  const ceiling = summarize(
    `[${placement}] ceiling: RPC ping, no storage`,
    await cannon("ceiling", { path: "/v1/teams/hot/ping" }),
  );
  // The floor under any mutation: the same round trip plus one tiny durable commit.
  const durable = summarize(
    `[${placement}] ceiling: RPC ping + one durable write`,
    await cannon("durable ceiling", { path: "/v1/teams/hot/ping?durable=true" }),
  );
  const hot = summarize(
    `[${placement}] spend, one hot team`,
    await cannon("spend hot", { requests: spendRequests(() => "hot") }),
  );
  // The priced spend: the worker's copy of the price book prices it (no D1, no extra RPC).
  const feature = await api("PUT", "/v1/features/bench-priced", { name: "Bench", unit: "request", creditsPerUnit: 1 });
  if (feature.status >= 300) throw new Error(`PUT /v1/features/bench-priced answered ${feature.status}`);
  const priced = summarize(
    `[${placement}] priced spend, one hot team`,
    await cannon("priced spend hot", { requests: spendRequests(() => "hot", pricedSpendBody) }),
  );
  rows.push(ceiling, durable, hot, priced);
  // One plain-then-priced pair is at the mercy of whatever else the machine does in those seconds
  // (and the priced run always comes second, on a longer history). Alternate them instead, in
  // PRICED_ROUNDS rounds whose order flips each time, and take the median of the rounds' ratios.
  const roundRatios = [];
  for (let round = 0; round < PRICED_ROUNDS; round++) {
    /** @param {boolean} priced */
    const run = async (priced) => {
      const r = await cannon(priced ? "priced round" : "plain round", {
        duration: Math.max(2, Math.round(SECONDS / 2)),
        requests: spendRequests(() => "hot", priced ? pricedSpendBody : spendBody),
      });
      return r.requests.average;
    };
    const [first, second] = round % 2 === 0 ? [false, true] : [true, false];
    const a = await run(first);
    const b = await run(second);
    const plainRate = first ? b : a;
    const pricedRate = first ? a : b;
    roundRatios.push(pricedRate / plainRate);
  }
  const sorted = [...roundRatios].sort((x, y) => x - y);
  const pricedToPlainMedian = Number((sorted[Math.floor(sorted.length / 2)] ?? 0).toFixed(3));
  console.log(
    `[${placement}] priced / plain, alternating rounds: ${roundRatios.map((r) => r.toFixed(3)).join(", ")} (median ${pricedToPlainMedian})`,
  );
  return {
    pricedSpendPerSecond: priced.requestsPerSecond,
    pricedToPlain: Number((priced.requestsPerSecond / hot.requestsPerSecond).toFixed(3)),
    pricedToPlainRounds: roundRatios.map((r) => Number(r.toFixed(3))),
    pricedToPlainMedian,
    placement,
    ceilingPerSecond: ceiling.requestsPerSecond,
    durableCeilingPerSecond: durable.requestsPerSecond,
    spendPerSecond: hot.requestsPerSecond,
    spendToCeiling: Number((hot.requestsPerSecond / ceiling.requestsPerSecond).toFixed(3)),
    spendToDurableCeiling: Number((hot.requestsPerSecond / durable.requestsPerSecond).toFixed(3)),
    durableCeilingToCeiling: Number((durable.requestsPerSecond / ceiling.requestsPerSecond).toFixed(3)),
  };
}

/**
 * Batch spends, 1,000 items a request, one team, two requests in flight.
 * @param {string} placement
 * @param {Row[]} rows the table, added to
 */
async function batchSpends(placement, rows) {
  await setupTeam(`batch-${placement}`, 1_000_000_000_000);
  const items = JSON.stringify(Array.from({ length: 1000 }, () => ({ feature: "bench", amount: 1 })));
  process.stderr.write("running: batch\n");
  const batch = await loopFor(SECONDS, 2, async (w, i) => {
    const r = await fetch(`${BASE}/v1/teams/batch-${placement}/spends/batch`, {
      method: "POST",
      headers: { ...HEADERS, "idempotency-key": `b-${w}-${i}` },
      body: `{"mode":"all_or_nothing","items":${items}}`,
    });
    await r.arrayBuffer();
    return r.status === 200;
  });
  const row = loopSummary(`[${placement}] batch spends (1,000/request)`, batch, 1000);
  rows.push(row);
  return row.unitsPerSecond;
}

/** Connections of the PostgreSQL peer's pg Pool (BENCH_PEER_POOL, default 10: the bench's connections). */
const PEER_POOL_SIZE = Number(process.env.BENCH_PEER_POOL ?? 10);
/** BENCH_PEER_PIPELINE=1: the peer sends its statements in pg's pipeline mode (2 round trips, not 5). */
const PEER_PIPELINE = process.env.BENCH_PEER_PIPELINE === "1";

/**
 * One autocannon run of the peer comparison.
 * @typedef {{ requestsPerSecond: number, p50Ms: number, p99Ms: number, non2xx: number, errors: number }} PeerRun
 */

/**
 * The middle value (the upper one of two for an even count).
 * @param {number[]} xs
 */
function median(xs) {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

/**
 * Before the peer is measured, proves it does our spend: the spending order across two grants
 * (free before paid, whatever their age), the running balanceAfter, the replay of a key (same
 * bytes, Idempotent-Replayed), 422 for a key reused with another body, 402 when short, 401 for a
 * wrong key, and an intact chain. Throws when any of that does not hold.
 * @param {string} base the peer's URL
 * @param {import("pg").Pool} pool
 */
async function checkPeerSpend(base, pool) {
  await seedTeam(pool, "smoke", [
    { credits: 5, category: "paid" },
    { credits: 2, category: "free" },
  ]);
  /**
   * @param {unknown} body
   * @param {string} key
   * @param {Record<string, string>} [headers]
   */
  const post = async (body, key, headers = HEADERS) => {
    const r = await fetch(`${base}/v1/teams/smoke/spends`, {
      method: "POST",
      headers: { ...headers, "idempotency-key": key },
      body: JSON.stringify(body),
    });
    return { status: r.status, replayed: r.headers.get("idempotent-replayed"), text: await r.text() };
  };
  const first = await post({ feature: "bench", amount: 4 }, "smoke-1");
  const again = await post({ feature: "bench", amount: 4 }, "smoke-1");
  const reused = await post({ feature: "bench", amount: 3 }, "smoke-1");
  const short = await post({ feature: "bench", amount: 10 }, "smoke-2");
  const wrongKey = await post({ feature: "bench", amount: 1 }, "smoke-3", { ...HEADERS, authorization: "Bearer nope" });
  const { entries = [], balance } =
    /** @type {{ entries?: { amount: number, balanceAfter: number }[], balance?: { available: number } }} */ (
      first.status === 201 ? JSON.parse(first.text) : {}
    );
  const check = await checkTeam(pool, "smoke");
  const problems = [
    first.status === 201 || `first spend → ${first.status} ${first.text}`,
    JSON.stringify(entries.map((e) => [e.amount, e.balanceAfter])) === "[[2,5],[2,3]]" ||
      `entries (amount, balanceAfter) ${JSON.stringify(entries.map((e) => [e.amount, e.balanceAfter]))}, not free 2 then paid 2`,
    balance?.available === 3 || `balance ${JSON.stringify(balance)}`,
    (again.status === 201 && again.replayed === "true" && again.text === first.text) || "the replay differs",
    reused.status === 422 || `reused key → ${reused.status}`,
    short.status === 402 || `spend beyond the balance → ${short.status}`,
    wrongKey.status === 401 || `wrong bearer → ${wrongKey.status}`,
    (check.chainIntact && check.balanced && check.entries === 4) || `after the checks: ${JSON.stringify(check)}`,
  ].filter((p) => p !== true);
  if (problems.length > 0) throw new Error(`the PostgreSQL peer does not do our spend: ${problems.join("; ")}`);
}

/**
 * Ours against the floor and against a peer, state on disk for all three: our spend, our RPC ping
 * with one durable write (the least any mutation in the object costs), and a Node + PostgreSQL
 * row-lock spend (bench/peer/: one Node process, a pool of PEER_POOL_SIZE, a fresh cluster with
 * fsync and synchronous_commit on), one hot team each, the same autocannon settings. PEER_ROUNDS
 * rounds, the order rotated every round so no target always runs first (or after the same one);
 * medians of the rounds, and the medians of each round's ratios. Skipped, with how to install
 * PostgreSQL, when it is not installed; the cluster and the peer stop on every path.
 * @param {Row[]} rows the table, added to (the medians)
 */
async function peerComparison(rows) {
  const bin = findPostgres();
  if (!bin) {
    console.log(`PostgreSQL peer skipped: initdb and postgres not found. To include it: ${INSTALL_HINT}`);
    return { skipped: `PostgreSQL is not installed (${INSTALL_HINT})` };
  }
  /** @type {import("./peer/postgres.mjs").Cluster} */
  let cluster;
  try {
    cluster = await startPostgres(bin);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    console.log(`PostgreSQL peer skipped: ${reason}`);
    return { skipped: reason };
  }
  /** @type {() => Promise<void>} */
  let stopPeer = async () => {};
  const pool = new pg.Pool({ ...cluster.connection, max: 2 });
  try {
    for (const statement of SCHEMA) await pool.query(statement);
    await seedTeam(pool, "hot", [{ credits: 1_000_000_000, category: "paid" }]);
    const peer = await startPeerServer({
      adminKey: KEY,
      database: cluster.connection,
      poolSize: PEER_POOL_SIZE,
      pipeline: PEER_PIPELINE,
    });
    stopPeer = peer.stop;
    await checkPeerSpend(peer.base, pool);
    await setupTeam("peer-hot", 1_000_000_000);
    /** @type {{ name: string, opts: () => Partial<autocannon.Options> & { path?: string } }[]} */
    const targets = [
      { name: "ours: spend", opts: () => ({ requests: spendRequests(() => "peer-hot") }) },
      { name: "ours: RPC ping + one durable write", opts: () => ({ path: "/v1/teams/peer-hot/ping?durable=true" }) },
      { name: "peer: Node + PostgreSQL spend", opts: () => ({ url: peer.base, requests: spendRequests(() => "hot") }) },
    ];
    // Warm-up (JIT, the pool's connections, caches), not counted.
    for (const t of targets) await cannon(`warm-up, ${t.name}`, { ...t.opts(), duration: 2 });
    /** @type {PeerRun[][]} per target, per round */
    const runs = targets.map(() => []);
    for (let round = 0; round < PEER_ROUNDS; round++) {
      for (let k = 0; k < targets.length; k++) {
        const i = (round + k) % targets.length;
        const target = targets[i];
        const r = await cannon(`peer round ${round + 1}/${PEER_ROUNDS}, ${target?.name}`, target?.opts() ?? {});
        runs[i]?.push({
          requestsPerSecond: r.requests.average,
          p50Ms: r.latency.p50,
          p99Ms: r.latency.p99,
          non2xx: r.non2xx ?? 0,
          errors: r.errors,
        });
      }
    }
    const peerCheck = await checkTeam(pool, "hot");
    const [ours = [], durable = [], theirs = []] = runs;
    const medians = runs.map((rs, i) => ({
      scenario: `[disk] ${targets[i]?.name}, one hot team (median of ${rs.length})`,
      requestsPerSecond: Math.round(median(rs.map((r) => r.requestsPerSecond))),
      unitsPerSecond: Math.round(median(rs.map((r) => r.requestsPerSecond))),
      p50Ms: median(rs.map((r) => r.p50Ms)),
      p99Ms: median(rs.map((r) => r.p99Ms)),
      non2xx: rs.reduce((n, r) => n + r.non2xx, 0),
      errors: rs.reduce((n, r) => n + r.errors, 0),
    }));
    rows.push(...medians);
    /** @param {PeerRun[]} over */
    const ratios = (over) =>
      ours.map((r, k) => Number((r.requestsPerSecond / (over[k]?.requestsPerSecond ?? 1)).toFixed(3)));
    const toDurable = ratios(durable);
    const toPeer = ratios(theirs);
    const [oursRow, durableRow, peerRow] = medians;
    return {
      placement: "disk",
      rounds: PEER_ROUNDS,
      secondsPerRun: SECONDS,
      connections: CONNECTIONS,
      peer: {
        processes: 1,
        poolSize: PEER_POOL_SIZE,
        pipeline: PEER_PIPELINE,
        postgres: cluster.version,
        settings: cluster.settings,
        check: peerCheck,
      },
      spend: { perSecond: oursRow?.requestsPerSecond, p50Ms: oursRow?.p50Ms, p99Ms: oursRow?.p99Ms },
      durableWrite: { perSecond: durableRow?.requestsPerSecond, p50Ms: durableRow?.p50Ms, p99Ms: durableRow?.p99Ms },
      peerSpend: { perSecond: peerRow?.requestsPerSecond, p50Ms: peerRow?.p50Ms, p99Ms: peerRow?.p99Ms },
      spendToDurableWrite: median(toDurable),
      spendToDurableWriteRounds: toDurable,
      spendToPeer: median(toPeer),
      spendToPeerRounds: toPeer,
      targets: { spendToDurableWrite: 0.85, spendToPeer: 1.5 },
      met: { spendToDurableWrite: median(toDurable) >= 0.85, spendToPeer: median(toPeer) >= 1.5 },
      runs: Object.fromEntries(targets.map((t, i) => [t.name, runs[i]])),
    };
  } finally {
    await stopPeer();
    await pool.end().catch(() => {});
    cluster.stop();
  }
}

/**
 * Prints the peer comparison's ratios (its medians are in the main table).
 * @param {Awaited<ReturnType<typeof peerComparison>>} peer
 */
function printPeer(peer) {
  if ("skipped" in peer) {
    console.log(`PostgreSQL peer: skipped (${peer.skipped})`);
    return;
  }
  console.log(
    `ours against the floor and a peer (state on disk, ${peer.rounds} alternating rounds of ${peer.secondsPerRun} s, ${peer.connections} connections; peer: 1 Node process, pool of ${peer.peer.poolSize}${peer.peer.pipeline ? ", pipelined" : ""}, ${peer.peer.postgres.split(" on ")[0]}, fsync ${peer.peer.settings.fsync}, synchronous_commit ${peer.peer.settings.synchronous_commit}):`,
  );
  console.table([
    {
      ratio: "spend / one durable write",
      median: peer.spendToDurableWrite,
      target: peer.targets.spendToDurableWrite,
      met: peer.met.spendToDurableWrite,
      rounds: peer.spendToDurableWriteRounds.join(", "),
    },
    {
      ratio: "spend / PostgreSQL peer",
      median: peer.spendToPeer,
      target: peer.targets.spendToPeer,
      met: peer.met.spendToPeer,
      rounds: peer.spendToPeerRounds.join(", "),
    },
  ]);
  console.log("peer's team after the run:", peer.peer.check);
}

/**
 * BENCH_ONLY=peer: the peer comparison alone, on a fresh worker with its state on disk.
 * @param {{ cpus: string, memoryGiB: number, node: string, date: string }} machine
 */
async function peerOnly(machine) {
  await startWorker("disk");
  /** @type {Row[]} */
  const rows = [];
  const peer = await peerComparison(rows);
  stopWorker();
  console.log(`\nmachine: ${machine.cpus}, ${machine.memoryGiB} GiB, node ${machine.node}, ${machine.date}`);
  console.table(rows);
  printPeer(peer);
  mkdirSync("bench/results", { recursive: true });
  const file = `bench/results/${machine.date.replaceAll(":", "-")}-peer.json`;
  const settings = { SECONDS, CONNECTIONS, PEER_ROUNDS, PEER_POOL_SIZE, PEER_PIPELINE };
  writeFileSync(file, `${JSON.stringify({ machine, settings, rows, peer }, null, 2)}\n`);
  console.log(`wrote ${file}`);
}

/**
 * What GET /v1/admin/history/stats counts: D1 batch calls, statements and rows that landed history.
 * @typedef {{ batches: number, statements: number, rows: number }} HistoryStats
 */

/** @returns {Promise<HistoryStats>} */
async function historyStats() {
  return /** @type {HistoryStats} */ ((await api("GET", "/v1/admin/history/stats")).body);
}

/** Waits until the history counts stop moving for 1.5 s (at most 60 s): everything sent has landed. */
async function historyQuiet() {
  let last = JSON.stringify(await historyStats());
  let still = Date.now();
  const until = Date.now() + 60_000;
  while (Date.now() - still < 1_500 && Date.now() < until) {
    await sleep(250);
    const now = JSON.stringify(await historyStats());
    if (now !== last) {
      last = now;
      still = Date.now();
    }
  }
}

/**
 * "spends spread over 1,000 teams" (BENCH_ONLY=spread): the maximum spend rate (autocannon), the
 * D1 batch calls and statements that landed its entries (GET /v1/admin/history/stats), and the lag
 * from a spend's answer to its entry in D1 (withProbes), at that maximum and again at a fixed rate
 * (BENCH_SPREAD_RATE), on the worker as started (HISTORY_DELIVERY=direct, or the queue).
 * @param {string} mode
 */
async function spreadScenario(mode) {
  // Few at a time: workerd answered SQLITE_NOMEM now and then to 20 team creations at once here.
  await pool(1000, 4, (i) => setupTeam(`t${i}`, 1_000_000_000));
  await historyQuiet();
  const before = await historyStats();
  const atMax = await withProbes(mode, () =>
    cannon(`spend spread (${mode})`, { requests: spendRequests((n) => `t${n % 1000}`) }),
  );
  const load = atMax.result;
  await historyQuiet();
  const after = await historyStats();
  // The lag again at a fixed rate below both paths' maximum (open loop), spread the same way.
  let paceSeq = 0;
  const atRate = await withProbes(mode, () =>
    paced(`spend spread at ${SPREAD_RATE}/s (${mode})`, SPREAD_RATE, SECONDS, () => {
      paceSeq += 1;
      return {
        method: "POST",
        path: `/v1/teams/t${paceSeq % 1000}/spends`,
        body: spendBody,
        key: `pace-${mode}-${paceSeq}`,
      };
    }),
  );
  await historyQuiet();
  let backlog = 0;
  await pool(1000, 20, async (i) => {
    backlog += /** @type {Replication} */ ((await api("GET", `/v1/teams/t${i}/replication`)).body).backlog;
  });
  const spends = (load["2xx"] ?? 0) + atMax.probeSpends;
  const statements = after.statements - before.statements;
  return {
    delivery: mode,
    spendsPerSecond: Math.round(load.requests.average),
    p99Ms: load.latency.p99,
    non2xx: load.non2xx ?? 0,
    spends,
    d1Batches: after.batches - before.batches,
    d1Statements: statements,
    statementsPer1000Spends: Math.round((statements / Math.max(1, spends)) * 1000),
    rowsLanded: after.rows - before.rows,
    lagP50AtMaxMs: percentile(atMax.lags, 50),
    lagP99AtMaxMs: percentile(atMax.lags, 99),
    lagSamplesAtMax: atMax.lags.length,
    [`lagP50At${SPREAD_RATE}Ms`]: percentile(atRate.lags, 50),
    [`lagP99At${SPREAD_RATE}Ms`]: percentile(atRate.lags, 99),
    lagSamplesAtRate: atRate.lags.length,
    backlogAtEnd: backlog,
  };
}

/** The fixed rate of the spread scenario's second lag measurement (BENCH_SPREAD_RATE, default 50/s). */
const SPREAD_RATE = Number(process.env.BENCH_SPREAD_RATE ?? 50);

/**
 * Runs `load` while 10 probe loops each spend on one of the teams t0-t9 and poll its replication
 * every 20 ms until the entry is in D1: the lag from a spend's answer to its entry in D1.
 * @template T
 * @param {string} mode
 * @param {() => Promise<T>} load
 * @returns {Promise<{ result: T, lags: number[], probeSpends: number }>}
 */
async function withProbes(mode, load) {
  /** @type {number[]} */
  const lags = [];
  let probing = true;
  let probeSpends = 0;
  const probes = Array.from({ length: 10 }, async (_, w) => {
    for (let i = 0; probing; i++) {
      const r = await api(
        "POST",
        `/v1/teams/t${w}/spends`,
        { feature: "probe", amount: 1 },
        `probe-${mode}-${w}-${i}-${Date.now()}`,
      );
      const at = Date.now();
      if (r.status !== 201) continue;
      probeSpends += 1;
      const { entries } = /** @type {{ entries: { seq: number }[] }} */ (r.body);
      const seq = entries[entries.length - 1]?.seq ?? 0;
      for (;;) {
        const rep = /** @type {Replication} */ ((await api("GET", `/v1/teams/t${w}/replication`)).body);
        if (rep.deliveredSeq >= seq) break;
        if (Date.now() - at > 30_000) throw new Error(`t${w}: seq ${seq} not in D1 after 30 s`);
        await sleep(20);
      }
      lags.push(Date.now() - at);
    }
  });
  const result = await load();
  probing = false;
  await Promise.all(probes);
  lags.sort((a, b) => a - b);
  return { result, lags, probeSpends };
}

/**
 * BENCH_ONLY=spread: the spread scenario on the direct path (before the queue), then through the queue.
 * @param {{ cpus: string, memoryGiB: number, node: string, date: string }} machine
 */
async function spreadOnly(machine) {
  const results = [];
  for (const mode of ["direct", "queue"]) {
    if (mode === "direct") process.env.HISTORY_DELIVERY = "direct";
    else delete process.env.HISTORY_DELIVERY;
    await startWorker("disk");
    results.push(await spreadScenario(mode));
  }
  stopWorker();
  delete process.env.HISTORY_DELIVERY;
  console.log(`\nmachine: ${machine.cpus}, ${machine.memoryGiB} GiB, node ${machine.node}, ${machine.date}`);
  console.log(`spends spread over 1,000 teams, ${SECONDS} s, ${CONNECTIONS} connections, state on disk:`);
  console.table(results);
  mkdirSync("bench/results", { recursive: true });
  const file = `bench/results/${machine.date.replaceAll(":", "-")}-spread.json`;
  writeFileSync(file, `${JSON.stringify({ machine, settings: { SECONDS, CONNECTIONS }, results }, null, 2)}\n`);
  console.log(`wrote ${file}`);
}

async function main() {
  const machine = {
    cpus: `${cpus().length} × ${cpus()[0]?.model ?? "unknown"}`,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    date: new Date().toISOString(),
  };
  if (ONLY === "peer") return peerOnly(machine);
  if (ONLY === "spread") return spreadOnly(machine);
  /** @type {Row[]} */
  const rows = [];
  const ratios = [];
  /** @type {Record<string, number>} by placement */
  const batchPerSecond = {};

  // Memory first: the ceilings, the hot spend and the batch without the disk's fsync.
  if (WITH_MEMORY) {
    await startWorker("memory");
    ratios.push(await ceilings("memory", rows));
    batchPerSecond.memory = await batchSpends("memory", rows);
  }

  await startWorker("disk");
  // 5 and 1: the ceilings (one RPC round trip without storage; and with one tiny durable commit)
  // and single spends on one hot team.
  const disk = await ceilings("disk", rows);
  ratios.push(disk);

  // 1b. latency at half of the hot spend's maximum rate, open loop and evenly paced; the same rate
  // on the routes below the spend, so the tail the runtime adds by itself is visible beside it.
  const halfRate = Math.max(1, Math.floor(disk.spendPerSecond / 2));
  let paceSeq = 0;
  const tail = [];
  tail.push(await paced("healthz (no object)", halfRate, SECONDS, () => ({ path: "/healthz" })));
  tail.push(await paced("RPC ping, no storage", halfRate, SECONDS, () => ({ path: "/v1/teams/hot/ping" })));
  tail.push(
    await paced("RPC ping + one durable write", halfRate, SECONDS, () => ({ path: "/v1/teams/hot/ping?durable=true" })),
  );
  tail.push(
    await paced("spend, one hot team", halfRate, SECONDS, () => ({
      method: "POST",
      path: "/v1/teams/hot/spends",
      body: spendBody,
      key: `paced-${++paceSeq}`,
    })),
  );

  // 2. the same spread over 1,000 teams.
  await pool(1000, 20, (i) => setupTeam(`t${i}`, 1_000_000_000));
  rows.push(
    summarize(
      "[disk] spend, 1,000 teams",
      await cannon("spend spread", { requests: spendRequests((n) => `t${n % 1000}`) }),
    ),
  );

  // 3. hold + capture pairs.
  await setupTeam("holds", 1_000_000_000);
  const pairs = await loopFor(SECONDS, CONNECTIONS, async (w, i) => {
    const h = await api("POST", "/v1/teams/holds/holds", { amount: 2, ttlSeconds: 60 }, `h-${w}-${i}`);
    if (h.status !== 201) return false;
    const { hold } = /** @type {{ hold: { id: string } }} */ (h.body);
    const c = await api("POST", `/v1/teams/holds/holds/${hold.id}/capture`, { amount: 1 }, `c-${w}-${i}`);
    return c.status === 200;
  });
  rows.push(loopSummary("[disk] hold + capture pair", pairs));

  // 4. batch spends, 1,000 items a request, one team.
  batchPerSecond.disk = await batchSpends("disk", rows);
  const items = JSON.stringify(Array.from({ length: 1000 }, () => ({ feature: "bench", amount: 1 })));

  // 8. reads: balance and an entries page.
  rows.push(summarize("[disk] balance read", await cannon("balance", { path: "/v1/teams/hot/balance" })));
  rows.push(summarize("[disk] entries page (50)", await cannon("entries", { path: "/v1/teams/hot/entries?limit=50" })));

  // 7. outbox lag under sustained load: sample (time, last seq written, delivered seq).
  await setupTeam("lag", 1_000_000_000);
  /** @type {[number, number][]} */
  const written = []; // [timeMs, seq]
  /** @type {[number, number][]} */
  const delivered = []; // [timeMs, deliveredSeq]
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const r = await api("GET", "/v1/teams/lag/replication");
      delivered.push([Date.now(), /** @type {Replication} */ (r.body).deliveredSeq]);
      await sleep(50);
    }
  })();
  const lagLoad = await loopFor(SECONDS, CONNECTIONS, async (w, i) => {
    const r = await api("POST", "/v1/teams/lag/spends", { feature: "bench", amount: 1 }, `l-${w}-${i}`);
    if (r.status !== 201) return false;
    const { entries } = /** @type {{ entries: { seq: number }[] }} */ (r.body);
    written.push([Date.now(), entries[entries.length - 1].seq]);
    return true;
  });
  /** @type {Replication | null} */
  let final = null;
  for (let i = 0; i < 200; i++) {
    final = /** @type {Replication} */ ((await api("GET", "/v1/teams/lag/replication")).body);
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

  // 9. ours against one durable write and against a Node + PostgreSQL peer, alternating rounds.
  const peer = await peerComparison(rows);

  stopWorker();
  const result = {
    machine,
    settings: { SECONDS, CONNECTIONS, halfRate },
    rows,
    ratios,
    batchSpendsPerSecond: batchPerSecond,
    tailAtHalfRate: tail,
    outbox,
    flatness,
    peer,
  };

  console.log(`\nmachine: ${machine.cpus}, ${machine.memoryGiB} GiB, node ${machine.node}, ${machine.date}`);
  console.table(rows);
  console.log("throughput ratios (spend / ceiling, spend / durable-write ceiling, durable-write / ceiling):");
  console.table(ratios);
  console.log(`latency at ${halfRate}/s (half of the hot spend's maximum), open loop, state on disk:`);
  console.table(tail);
  console.log("spend p50 with growing history:");
  console.table(flatness);
  console.log("outbox:", outbox);
  printPeer(peer);
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
