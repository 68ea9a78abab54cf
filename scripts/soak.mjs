// `npm run soak`: mixed concurrent load on a local server, then proof that nothing drifted.
//
// Starts its own local worker on 127.0.0.1 (scripts/local-worker.mjs: a free port, a fresh temporary
// state, D1 migrations applied, ADMIN_API_KEY bound), creates SOAK_TEAMS teams with paid,
// free (expiring) and promotional grants, then drives SOAK_SECONDS of mixed load from this process
// over loopback: spends, batch spends (both modes), holds with full and partial captures,
// releases and extends, grants, voids, entries pages, balance reads, and retries with the same
// Idempotency-Key (sequential, and two copies sent at once). From the answers alone it tracks,
// per team, what the balance must be (grants in, spends, captures and voids out; a replay changes
// nothing; a key is applied once, on its first successful answer, replayed or not).
//
// Afterwards it waits (bounded) until every team's outbox backlog is 0, then checks per team:
// GET balance = the tracked expectation (available, held, total); GET /v1/admin/reconcile has
// drift 0 (total, available, held) and missingEntries 0; GET entries/verify says ok. It prints
// operations by kind, outcomes by status, latency p50/p99 and drift per team, writes
// bench/results/soak-<time>.json, exits non-zero on any 5xx, drift, chain break or double
// application, and stops the server it started (also on Ctrl-C and on errors).
//
// Options (env): SOAK_SECONDS (60), SOAK_TEAMS (100), SOAK_CONCURRENCY (24), SOAK_MAX_OPS
// (500000, a bound on requests in the load phase), SOAK_PORT (a free port when unset).
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startLocalWorker } from "./local-worker.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SECONDS = Number(process.env.SOAK_SECONDS ?? 60);
const TEAMS = Number(process.env.SOAK_TEAMS ?? 100);
const CONCURRENCY = Number(process.env.SOAK_CONCURRENCY ?? 24);
const MAX_OPS = Number(process.env.SOAK_MAX_OPS ?? 500_000);
const KEY = `soak-${Math.random().toString(36).slice(2)}`;
const REQUEST_TIMEOUT_MS = 30_000;
const START_TIMEOUT_MS = 90_000;
const DRAIN_TIMEOUT_MS = 120_000;
/** The whole run, setup and checks included, stops within this. */
const OVERALL_MS = (SECONDS + 15 * 60) * 1000;
const HOLD_TTL_SECONDS = 3600; // no hold expires during the run: every change is seen in an answer

/** @param {string} m */
const log = (m) => process.stderr.write(`[soak] ${m}\n`);
/** @param {number} ms */
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- the server and cleanup -------------------------------------------------------------------

/** @type {Awaited<ReturnType<typeof startLocalWorker>> | null} */
let worker = null;
const stopAll = () => worker?.stop();
process.on("exit", stopAll);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"])
  process.on(sig, () => {
    log(`${sig}: stopping`);
    process.exit(130);
  });
const overall = setTimeout(() => {
  log(`overall time limit (${OVERALL_MS / 1000} s) reached: stopping`);
  process.exit(3);
}, OVERALL_MS);
overall.unref();

let BASE = "";

async function startWorker() {
  const port = process.env.SOAK_PORT ? Number(process.env.SOAK_PORT) : undefined;
  worker = await startLocalWorker({ port, adminKey: KEY, tag: "soak", startTimeoutMs: START_TIMEOUT_MS });
  BASE = worker.base;
}

// ---- requests and stats ---------------------------------------------------------------------

/** @type {Record<string, number>} */
const opsByKind = {};
/** @type {Record<string, number>} by HTTP status, and "network" for no answer */
const statusCounts = {};
/** @type {number[]} */
const latencies = [];
/** @type {{ method: string, path: string, status: number, body: string }[]} */
const serverErrors = [];
/** @type {string[]} */
const problems = []; // broken expectations found during the run (double application, bad replay)
let requestCount = 0;

/**
 * What http() returns: the status (0 when no answer came, with `error` saying why, and no
 * `text`), whether the answer is a replay, and the body as JSON (null when empty or not JSON)
 * and as text. `json` is typed where it is read, as the API documents the answer.
 * @typedef {{ status: number, replayed: boolean, json: unknown, text?: string, error?: string }} Reply
 */

/**
 * One HTTP request; records its status and latency when `kind` is given.
 * @param {string} method
 * @param {string} path
 * @param {{ body?: unknown, key?: string, kind?: string }} [options]
 * @returns {Promise<Reply>}
 */
async function http(method, path, { body, key, kind } = {}) {
  /** @type {Record<string, string>} */
  const headers = { authorization: `Bearer ${KEY}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (key) headers["idempotency-key"] = key;
  const t0 = performance.now();
  /** @type {Response} */
  let res;
  /** @type {string} */
  let text;
  try {
    res = await fetch(`${BASE}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    text = await res.text();
  } catch (err) {
    if (kind) {
      statusCounts.network = (statusCounts.network ?? 0) + 1;
      opsByKind[kind] = (opsByKind[kind] ?? 0) + 1;
    }
    return { status: 0, error: String(err instanceof Error ? err.message : err), replayed: false, json: null };
  }
  const ms = performance.now() - t0;
  if (kind) {
    requestCount += 1;
    latencies.push(ms);
    opsByKind[kind] = (opsByKind[kind] ?? 0) + 1;
    statusCounts[res.status] = (statusCounts[res.status] ?? 0) + 1;
  }
  if (res.status >= 500) serverErrors.push({ method, path, status: res.status, body: text.slice(0, 300) });
  /** @type {unknown} */
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {}
  return { status: res.status, replayed: res.headers.get("idempotent-replayed") === "true", json, text };
}

// ---- the expectation per team ----------------------------------------------------------------

/**
 * What each team's balance must be, from the answers received. `applied` maps an Idempotency-Key
 * to the body of its first successful answer: a later answer for the same key must be a replay
 * of the same body, and changes nothing.
 * @type {Team[]}
 */
const teams = [];
/** @type {Map<string, { text: string | undefined, original: number }>} */
const applied = new Map();
let keySeq = 0;
/** @param {string} kind */
const newKey = (kind) =>
  `${kind.replace(/[^A-Za-z0-9_-]+/g, "_")}-${++keySeq}-${Math.random().toString(36).slice(2, 8)}`;

/**
 * A team and what its balance must be.
 * @typedef {object} Team
 * @property {string} id
 * @property {number} total
 * @property {number} held
 * @property {string[]} grants live grant ids we may void
 * @property {Map<string, number>} holds pending hold id -> amount
 * @property {Set<string>} busyHolds hold ids with an action in flight
 */

/**
 * The parts of a ledger entry in an answer that are read here.
 * @typedef {{ direction: string, type: string, amount: number }} Entry
 */

/**
 * @param {number} i
 * @returns {Team}
 */
function newTeam(i) {
  return {
    id: `soak-${i}`,
    total: 0,
    held: 0,
    grants: [], // live grant ids we may void
    holds: new Map(), // pending hold id -> amount
    busyHolds: new Set(), // hold ids with an action in flight
  };
}

/**
 * Total moved by a reply's entries beyond what the request itself said (voids of returned credits).
 * @param {Entry[] | undefined} entries
 */
function voidedIn(entries) {
  let sum = 0;
  for (const e of entries ?? [])
    if (e.direction === "out" && (e.type === "void" || e.type === "expire")) sum += e.amount;
  return sum;
}

/**
 * Sends a mutation with its key; on a network error retries with the same key (a client that
 * never saw the answer must retry). Applies `effect` once per key, on its first 2xx answer.
 * @template T the JSON of a 2xx answer
 * @param {string} kind
 * @param {Team} team
 * @param {string} path
 * @param {unknown} body
 * @param {(json: T) => void} effect
 */
async function mutate(kind, team, path, body, effect) {
  const key = newKey(kind);
  let r = await http("POST", path, { body, key, kind });
  for (let attempt = 0; r.status === 0 && attempt < 3; attempt++) {
    await sleep(200);
    r = await http("POST", path, { body, key, kind: `${kind} (retry after network error)` });
  }
  record(kind, team, key, r, effect);
  return { key, r };
}

/**
 * @template T the JSON of a 2xx answer
 * @param {string} kind
 * @param {Team} team
 * @param {string} key
 * @param {Reply} r
 * @param {(json: T) => void} effect
 */
function record(kind, team, key, r, effect) {
  if (r.status < 200 || r.status >= 300) return;
  let seen = applied.get(key);
  if (seen === undefined) {
    // The first answer applies, replayed or not: a replay first is what a client sees when the
    // original answer was lost (or when two copies raced and the replay came back first).
    seen = { text: r.text, original: 0 };
    applied.set(key, seen);
    effect(/** @type {T} */ (r.json));
  } else if (r.text !== seen.text) {
    problems.push(`${kind} ${key}: two answers for one key differ on ${team.id}`);
  }
  if (!r.replayed) seen.original += 1;
  if (seen.original > 1) problems.push(`${kind} ${key}: applied twice (two answers not replayed) on ${team.id}`);
}

/**
 * Sends the same request again with the same key: it must replay and change nothing.
 * @param {string} kind
 * @param {Team} team
 * @param {string} path
 * @param {unknown} body
 * @param {string} key
 */
async function retrySame(kind, team, path, body, key) {
  const r = await http("POST", path, { body, key, kind: "idempotent retry" });
  if (r.status >= 200 && r.status < 300) {
    if (!r.replayed) problems.push(`${kind} ${key}: retry was not replayed on ${team.id}`);
    else if (applied.has(key) && applied.get(key)?.text !== r.text)
      problems.push(`${kind} ${key}: replay body differs on ${team.id}`);
  }
  return r;
}

/**
 * Sends a refused request again with the same key: one key, one outcome, so it must be the same
 * refusal, replayed byte for byte, whatever the balance is now.
 * @param {string} kind
 * @param {Team} team
 * @param {string} path
 * @param {unknown} body
 * @param {string} key
 * @param {Reply} first
 */
async function retryRefused(kind, team, path, body, key, first) {
  const r = await http("POST", path, { body, key, kind: "idempotent retry of a refusal" });
  if (r.status === 0) return;
  if (!r.replayed || r.status !== first.status || r.text !== first.text)
    problems.push(
      `${kind} ${key}: a refusal (${first.status}) retried gave ${r.status}, replayed ${r.replayed}, on ${team.id}`,
    );
}

// ---- operations -------------------------------------------------------------------------------

/** @param {number} n */
const rand = (n) => Math.floor(Math.random() * n);
/**
 * @template T
 * @param {T[]} xs
 * @returns {T}
 */
const pick = (xs) => xs[rand(xs.length)];
const FEATURES = ["email_finder", "video_render", "ai_summary", "export"];
const farFuture = () => new Date(Date.now() + 30 * 86_400_000).toISOString();

/**
 * @param {Team} team
 * @param {string} kind
 * @param {number} amount
 * @param {string} category
 * @param {string} source
 * @param {Record<string, unknown>} [extra] more fields of the grant
 */
async function grantTo(team, kind, amount, category, source, extra = {}) {
  const body = { amount, category, source, ...extra };
  const { r } = await mutate(
    kind,
    team,
    `/v1/teams/${team.id}/grants`,
    body,
    /** @param {{ grant: { id: string } }} j */ (j) => {
      team.total += amount;
      if (category === "promotional") team.grants.push(j.grant.id);
    },
  );
  if (r.status !== 201 && kind === "setup grant") throw new Error(`setup grant → ${r.status}: ${r.text}`);
  return r;
}

/** @param {Team} team */
async function setupTeam(team) {
  const put = await http("PUT", `/v1/teams/${team.id}`, { body: { name: team.id }, kind: "setup team" });
  if (put.status !== 201) throw new Error(`PUT team → ${put.status}: ${put.text}`);
  await grantTo(team, "setup grant", 50_000 + rand(50_000), "paid", "purchase", { reference: "soak" });
  await grantTo(team, "setup grant", 2_000 + rand(2_000), "free", "allocation", { expiresAt: farFuture() });
  await grantTo(team, "setup grant", 1_000 + rand(1_000), "promotional", "promotional", {
    expiresAt: farFuture(),
    priority: rand(3),
  });
}

/** @param {Team} team */
async function opSpend(team) {
  const amount = Math.random() < 0.03 ? 10_000_000 : 1 + rand(40); // a few cannot be afforded: 402
  const path = `/v1/teams/${team.id}/spends`;
  const body = { feature: pick(FEATURES), amount, quantity: 1 + rand(5), dimensions: { region: pick(["eu", "us"]) } };
  const roll = Math.random();
  if (roll < 0.1) {
    // Two copies at once with one key: exactly one is applied, the other replays.
    const key = newKey("spend-dup");
    const [a, b] = await Promise.all([
      http("POST", path, { body, key, kind: "spend (two at once)" }),
      http("POST", path, { body, key, kind: "spend (two at once)" }),
    ]);
    for (const r of [a, b]) record("spend (two at once)", team, key, r, () => (team.total -= amount));
    if (a.status === 201 && b.status === 201 && a.replayed === b.replayed)
      problems.push(`spend ${key}: two at once, replayed flags ${a.replayed}/${b.replayed} on ${team.id}`);
    return;
  }
  const { key, r } = await mutate("spend", team, path, body, () => (team.total -= amount));
  if (r.status === 402 && amount < 1000) problems.push(`spend of ${amount} refused with 402 on ${team.id}`);
  if (roll < 0.25 && r.status === 201) await retrySame("spend", team, path, body, key);
  if (r.status === 402) await retryRefused("spend", team, path, body, key, r);
}

/** @param {Team} team */
async function opBatch(team) {
  const mode = Math.random() < 0.5 ? "all_or_nothing" : "until_insufficient";
  const items = Array.from({ length: 1 + rand(20) }, () => ({ feature: pick(FEATURES), amount: 1 + rand(10) }));
  if (Math.random() < 0.1) items.push({ feature: "export", amount: 50_000_000 }); // does not fit
  const path = `/v1/teams/${team.id}/spends/batch`;
  const body = { mode, items };
  const { key, r } = await mutate(
    `batch ${mode}`,
    team,
    path,
    body,
    /** @param {{ results: { index: number, status: string }[] }} j */ (j) => {
      for (const res of j.results) if (res.status === "spent") team.total -= items[res.index].amount;
    },
  );
  if (r.status === 200 && Math.random() < 0.15) await retrySame("batch", team, path, body, key);
}

/** @param {Team} team */
async function opHold(team) {
  const amount = 5 + rand(60);
  const path = `/v1/teams/${team.id}/holds`;
  const body = { feature: "video_render", amount, ttlSeconds: HOLD_TTL_SECONDS };
  const { key, r } = await mutate(
    "hold",
    team,
    path,
    body,
    /** @param {{ hold: { id: string } }} j */ (j) => {
      team.held += amount;
      team.holds.set(j.hold.id, amount);
    },
  );
  if (r.status === 201 && Math.random() < 0.15) await retrySame("hold", team, path, body, key);
}

/**
 * A pending hold nobody else is acting on, marked busy; null when there is none.
 * @param {Team} team
 */
function takeHold(team) {
  const free = [...team.holds.keys()].filter((id) => !team.busyHolds.has(id));
  if (free.length === 0) return null;
  const id = pick(free);
  team.busyHolds.add(id);
  return id;
}

/** @param {Team} team */
async function opHoldAction(team) {
  const holdId = takeHold(team);
  if (!holdId) return opHold(team);
  try {
    // What the hold holds: takeHold took its id from team.holds, and while it is busy only this
    // action changes it.
    const amount = team.holds.get(holdId);
    if (amount === undefined) throw new Error(`hold ${holdId} is not among the pending holds of ${team.id}`);
    const roll = Math.random();
    const base = `/v1/teams/${team.id}/holds/${holdId}`;
    /** @type {string} */
    let action;
    /** @type {Record<string, unknown>} */
    let body;
    /**
     * Applied to the first 2xx answer: the hold as it is now and the entries written.
     * @type {(j: { hold: { capturedAmount: number }, entries?: Entry[] }) => void}
     */
    let effect;
    if (roll < 0.3) {
      action = "capture (full)";
      body = {};
      effect = (j) => {
        team.held -= amount;
        team.total -= j.hold.capturedAmount + voidedIn(j.entries);
        team.holds.delete(holdId);
      };
    } else if (roll < 0.55) {
      const part = 1 + rand(amount);
      action = "capture (partial)";
      body = { amount: part };
      effect = (j) => {
        team.held -= amount;
        team.total -= part + voidedIn(j.entries);
        team.holds.delete(holdId);
      };
    } else if (roll < 0.8) {
      action = "release";
      body = { reason: "soak" };
      effect = (j) => {
        team.held -= amount;
        team.total -= voidedIn(j.entries);
        team.holds.delete(holdId);
      };
    } else {
      const extra = Math.random() < 0.5 ? 1 + rand(20) : undefined;
      action = "extend";
      body = extra === undefined ? { ttlSeconds: HOLD_TTL_SECONDS } : { amount: extra };
      effect = () => {
        if (extra !== undefined) {
          team.held += extra;
          team.holds.set(holdId, amount + extra);
        }
      };
    }
    const path = `${base}/${action.split(" ")[0]}`;
    const { key, r } = await mutate(action, team, path, body, effect);
    if (r.status >= 200 && r.status < 300 && Math.random() < 0.2) await retrySame(action, team, path, body, key);
    if (action !== "extend" && r.status === 200 && Math.random() < 0.1) {
      // Acting again with a new key on a resolved hold: 409, nothing moves.
      const again = await http("POST", `${base}/release`, {
        body: {},
        key: newKey("late"),
        kind: "release (resolved)",
      });
      if (again.status !== 409) problems.push(`release of resolved hold ${holdId} → ${again.status} on ${team.id}`);
    }
  } finally {
    team.busyHolds.delete(holdId);
  }
}

/** @param {Team} team */
async function opGrant(team) {
  const roll = Math.random();
  if (roll < 0.5) await grantTo(team, "grant", 100 + rand(900), "paid", "purchase");
  else if (roll < 0.8) await grantTo(team, "grant", 50 + rand(200), "free", "allocation", { expiresAt: farFuture() });
  else await grantTo(team, "grant", 20 + rand(100), "promotional", "referral", { expiresAt: farFuture() });
}

/** @param {Team} team */
async function opVoid(team) {
  if (team.grants.length === 0) return opGrant(team);
  const grantId = team.grants.splice(rand(team.grants.length), 1)[0];
  const path = `/v1/teams/${team.id}/grants/${grantId}/void`;
  const { key, r } = await mutate(
    "void",
    team,
    path,
    undefined,
    /** @param {{ entries?: Entry[] }} j */ (j) => {
      team.total -= voidedIn(j.entries);
    },
  );
  if (r.status === 200 && Math.random() < 0.3) await retrySame("void", team, path, undefined, key);
}

/** @param {Team} team */
async function opEntries(team) {
  const first = await http("GET", `/v1/teams/${team.id}/entries?limit=50`, { kind: "entries page" });
  const page = /** @type {{ nextCursor: string | null } | null} */ (first.json);
  if (first.status === 200 && page?.nextCursor && Math.random() < 0.5)
    await http("GET", `/v1/teams/${team.id}/entries?limit=50&cursor=${encodeURIComponent(page.nextCursor)}`, {
      kind: "entries page",
    });
}

/** @param {Team} team */
async function opBalance(team) {
  await http("GET", `/v1/teams/${team.id}/balance`, { kind: "balance" });
}

/** @type {[number, (team: Team) => Promise<void>][]} weight, operation */
const MIX = [
  [30, opSpend],
  [8, opBatch],
  [12, opHold],
  [14, opHoldAction],
  [5, opGrant],
  [3, opVoid],
  [10, opEntries],
  [18, opBalance],
];
const MIX_TOTAL = MIX.reduce((s, [w]) => s + w, 0);
function pickOp() {
  let x = Math.random() * MIX_TOTAL;
  for (const [w, op] of MIX) {
    x -= w;
    if (x < 0) return op;
  }
  return MIX[0][1];
}

// ---- checks after the run ---------------------------------------------------------------------

/**
 * Runs fn over items from `concurrency` loops.
 * @template T
 * @param {T[]} items
 * @param {number} concurrency
 * @param {(item: T, i: number) => Promise<unknown>} fn
 */
async function pool(items, concurrency, fn) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i], i);
      }
    }),
  );
}

async function waitForReplication() {
  const t0 = Date.now();
  let pending = teams;
  while (Date.now() - t0 < DRAIN_TIMEOUT_MS) {
    /** @type {Team[]} */
    const left = [];
    await pool(pending, 16, async (team) => {
      const r = await http("GET", `/v1/teams/${team.id}/replication`);
      if (r.status !== 200 || /** @type {{ backlog: number }} */ (r.json).backlog !== 0) left.push(team);
    });
    if (left.length === 0) return { ms: Date.now() - t0, stuck: [] };
    pending = left;
    await sleep(250);
  }
  return { ms: Date.now() - t0, stuck: pending.map((t) => t.id) };
}

/**
 * The parts of GET entries/verify's 200 answer (one page of the chain) read here.
 * @typedef {{ checked: number, ok: boolean, firstBreak?: unknown, nextCursor: string | null }} VerifyPage
 */

/**
 * Walks the team's whole hash chain, page by page.
 * @param {string} teamId
 * @returns {Promise<{ ok: boolean, checked: number, firstBreak?: unknown, error?: string }>}
 */
async function verifyChain(teamId) {
  /** @type {string | null} */
  let cursor = null;
  let checked = 0;
  for (let page = 0; page < 100; page++) {
    const q = cursor ? `?cursor=${encodeURIComponent(cursor)}` : "";
    const r = await http("GET", `/v1/teams/${teamId}/entries/verify${q}`);
    // No answer at all (status 0) has no text: its error says why.
    if (r.status !== 200) return { ok: false, checked, error: `${r.status} ${r.text?.slice(0, 200) ?? r.error}` };
    const verified = /** @type {VerifyPage} */ (r.json);
    checked += verified.checked;
    if (!verified.ok) return { ok: false, checked, firstBreak: verified.firstBreak };
    if (!verified.nextCursor) return { ok: true, checked };
    cursor = verified.nextCursor;
  }
  return { ok: false, checked, error: "too many pages" };
}

/**
 * The parts of GET balance's 200 answer read here.
 * @typedef {{ total: number, available: number, held: number }} Balance
 */

/**
 * The parts of GET /v1/admin/reconcile's 200 answer read here.
 * @typedef {object} Reconcile
 * @property {number} drift
 * @property {{ drift: number }} available
 * @property {{ drift: number }} held
 * @property {number} d1Total
 * @property {number} outboxBacklog
 * @property {number} missingEntries
 * @property {number} lastSeq
 * @property {boolean} consistent
 */

/**
 * One team's result: the drifts (null when the answer was not 200), and `clean` once checked.
 * @typedef {object} TeamRow
 * @property {string} teamId
 * @property {number} expectedTotal
 * @property {number | null} objectTotal
 * @property {number | null} expectationDrift
 * @property {number | null} availableDrift
 * @property {number | null} heldDrift
 * @property {number | null} d1Drift
 * @property {number | null} d1AvailableDrift
 * @property {number | null} d1HeldDrift
 * @property {number | null} d1Total
 * @property {number | null} backlog
 * @property {number | null} missingEntries
 * @property {number | null} entries
 * @property {boolean} chainOk
 * @property {number} chainChecked
 * @property {boolean} [clean]
 * @property {{ balance: unknown, reconcile: unknown, chain: unknown }} [detail] the answers, when not clean
 */

/**
 * @param {Team} team
 * @returns {Promise<TeamRow>}
 */
async function checkTeam(team) {
  const bal = await http("GET", `/v1/teams/${team.id}/balance`);
  const rec = await http("GET", `/v1/admin/reconcile?teamId=${encodeURIComponent(team.id)}`);
  const chain = await verifyChain(team.id);
  const expected = { total: team.total, held: team.held, available: team.total - team.held };
  // Typed as the 200 answers; read with ?. or after checking the status.
  const balance = /** @type {Balance} */ (bal.json);
  const reconcile = /** @type {Reconcile} */ (rec.json);
  /** @type {TeamRow} */
  const row = {
    teamId: team.id,
    expectedTotal: expected.total,
    objectTotal: balance?.total ?? null,
    expectationDrift: bal.status === 200 ? balance.total - expected.total : null,
    availableDrift: bal.status === 200 ? balance.available - expected.available : null,
    heldDrift: bal.status === 200 ? balance.held - expected.held : null,
    d1Drift: rec.status === 200 ? reconcile.drift : null,
    d1AvailableDrift: rec.status === 200 ? reconcile.available.drift : null,
    d1HeldDrift: rec.status === 200 ? reconcile.held.drift : null,
    d1Total: rec.status === 200 ? reconcile.d1Total : null,
    backlog: rec.status === 200 ? reconcile.outboxBacklog : null,
    missingEntries: rec.status === 200 ? reconcile.missingEntries : null,
    entries: rec.status === 200 ? reconcile.lastSeq : null,
    chainOk: chain.ok,
    chainChecked: chain.checked,
  };
  row.clean =
    row.expectationDrift === 0 &&
    row.availableDrift === 0 &&
    row.heldDrift === 0 &&
    row.d1Drift === 0 &&
    row.d1AvailableDrift === 0 &&
    row.d1HeldDrift === 0 &&
    row.missingEntries === 0 &&
    row.backlog === 0 &&
    row.objectTotal === row.d1Total &&
    reconcile?.consistent === true &&
    row.chainOk &&
    row.chainChecked === row.entries;
  if (!row.clean) row.detail = { balance: bal.json, reconcile: rec.json, chain };
  return row;
}

/**
 * @param {number[]} sorted ascending
 * @param {number} p 0 to 100
 */
function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

// ---- main ---------------------------------------------------------------------------------------

async function main() {
  const machine = {
    nproc: cpus().length,
    cpu: cpus()[0]?.model ?? "unknown",
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    date: new Date().toISOString(),
  };
  log("starting the local worker (fresh temporary state)");
  await startWorker();
  log(`server on ${BASE}; creating ${TEAMS} teams`);
  for (let i = 0; i < TEAMS; i++) teams.push(newTeam(i));
  await pool(teams, 10, setupTeam);

  log(`load: ${SECONDS} s, ${CONCURRENCY} concurrent loops, at most ${MAX_OPS} operations`);
  const loadStart = Date.now();
  // Counts and latencies below are for the load phase only, not the setup.
  const setupRequests = requestCount;
  latencies.length = 0;
  for (const k of ["setup team", "setup grant"]) delete opsByKind[k];
  for (const k of Object.keys(statusCounts)) delete statusCounts[k];
  const stopAt = loadStart + SECONDS * 1000;
  let ops = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (Date.now() < stopAt && ops < MAX_OPS) {
        ops += 1;
        await pickOp()(pick(teams));
      }
    }),
  );
  const loadSeconds = (Date.now() - loadStart) / 1000;
  const loadRequests = requestCount - setupRequests;
  log(`load done: ${ops} operations, ${loadRequests} requests in ${loadSeconds.toFixed(1)} s; waiting for D1`);

  const replication = await waitForReplication();
  log(
    replication.stuck.length === 0
      ? `every outbox empty after ${replication.ms} ms; reconciling`
      : `outbox not empty after ${replication.ms} ms for ${replication.stuck.length} team(s); reconciling anyway`,
  );
  /** @type {TeamRow[]} */
  const rows = [];
  await pool(teams, 8, async (team) => rows.push(await checkTeam(team)));
  rows.sort((a, b) => Number(a.teamId.slice(5)) - Number(b.teamId.slice(5)));

  const sorted = [...latencies].sort((a, b) => a - b);
  const latency = {
    requests: sorted.length,
    p50Ms: Number(percentile(sorted, 50)?.toFixed(2)),
    p99Ms: Number(percentile(sorted, 99)?.toFixed(2)),
    maxMs: Number(sorted[sorted.length - 1]?.toFixed(2)),
  };
  const dirty = rows.filter((r) => !r.clean);
  const driftLine = rows.map((r) => r.expectationDrift ?? "?").join(" ");
  const d1DriftLine = rows.map((r) => r.d1Drift ?? "?").join(" ");
  const totalEntries = rows.reduce((s, r) => s + (r.entries ?? 0), 0);

  console.log(`\nmachine: nproc ${machine.nproc}, ${machine.cpu}, ${machine.memoryGiB} GiB, node ${machine.node}`);
  console.log(`date: ${machine.date}`);
  console.log(
    `load: ${SECONDS} s, ${CONCURRENCY} concurrent loops, ${TEAMS} teams; ${ops} operations, ${loadRequests} requests (${Math.round(loadRequests / loadSeconds)}/s)`,
  );
  console.log("\noperations by kind (requests):");
  console.table(Object.fromEntries(Object.entries(opsByKind).sort((a, b) => b[1] - a[1])));
  console.log("outcomes by status:");
  console.table(statusCounts);
  console.log(`latency (all requests): p50 ${latency.p50Ms} ms, p99 ${latency.p99Ms} ms, max ${latency.maxMs} ms`);
  console.log(`replication: every outbox empty ${replication.ms} ms after the load stopped`);
  console.log(
    `entries written: ${totalEntries} across ${TEAMS} teams; hash chains verified: ${rows.filter((r) => r.chainOk).length}/${TEAMS}`,
  );
  console.log(`drift per team, balance − tracked expectation (${TEAMS} teams):\n${driftLine}`);
  console.log(`drift per team, reconcile (object − D1 − backlog):\n${d1DriftLine}`);
  console.log(`missing entries in D1: ${rows.reduce((s, r) => s + (r.missingEntries ?? 0), 0)}`);
  console.log(`5xx: ${serverErrors.length}; broken expectations: ${problems.length}; teams not clean: ${dirty.length}`);
  for (const p of problems.slice(0, 20)) console.log(`  problem: ${p}`);
  for (const e of serverErrors.slice(0, 10)) console.log(`  5xx: ${e.method} ${e.path} → ${e.status} ${e.body}`);
  for (const d of dirty.slice(0, 10)) console.log(`  not clean: ${JSON.stringify(d)}`);

  const result = {
    machine,
    settings: { SECONDS, TEAMS, CONCURRENCY, MAX_OPS },
    operations: ops,
    requests: loadRequests,
    opsByKind,
    statusCounts,
    latency,
    replication,
    totalEntries,
    serverErrors,
    problems,
    teams: rows,
  };
  mkdirSync(join(ROOT, "bench", "results"), { recursive: true });
  const file = join("bench", "results", `soak-${machine.date.replaceAll(":", "-")}.json`);
  writeFileSync(join(ROOT, file), `${JSON.stringify(result, null, 2)}\n`);
  console.log(`\nwrote ${file}`);
  const failed = serverErrors.length > 0 || problems.length > 0 || dirty.length > 0 || replication.stuck.length > 0;
  console.log(failed ? "SOAK FAILED" : "SOAK OK: no 5xx, no drift, every chain verified");
  return failed ? 1 : 0;
}

main()
  .then((code) => process.exit(code))
  .catch((err) => {
    console.error(err);
    process.exit(1);
  });
