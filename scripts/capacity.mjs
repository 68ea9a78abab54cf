// `npm run capacity -- --teams 100000 --spends-per-second 20000 --hot-team-share 0.05`: what a load
// needs on Cloudflare and what breaks first, for the current design (each team object's alarm writes
// its own batch to D1) and the queue fan-in. The arithmetic is scripts/capacity-model.mjs; this file
// reads the measured costs (bench/costs.json, `npm run capacity:measure`) and the outbox's limits
// (src/limits.ts, src/db/history.ts), and prints. `--json` prints the model's whole result.
import { readFileSync } from "node:fs";
import { relative } from "node:path";
import { parseArgs } from "node:util";
import { capacity, PLATFORM } from "./capacity-model.mjs";

/** @typedef {import("./capacity-model.mjs").CapacityInputs} CapacityInputs */
/** @typedef {import("./capacity-model.mjs").CapacityResult} CapacityResult */
/** @typedef {import("./capacity-model.mjs").LimitCheck} LimitCheck */

/**
 * The parts of bench/costs.json read here (written by scripts/capacity-measure.mjs).
 * @typedef {object} SpendCosts
 * @property {number} entriesPerSpend
 * @property {number} rowsReadPerSpend
 * @property {number} rowsWrittenPerSpend
 * @property {number} databaseBytesPerSpend
 * @property {number} outboxJsonBytesPerEntry
 * @property {number} requestWallMsPerSpend
 * @typedef {object} MeasuredCosts
 * @property {string} measuredAt
 * @property {{ cpus: string }} machine
 * @property {SpendCosts} plainSpend
 * @property {SpendCosts} pricedSpend
 * @property {{ entries: number, d1RowsWrittenPerEntry: number, d1RowsReadPerEntry: number,
 *   d1DatabaseBytesPerEntry: number, d1MedianUsPerRow: number, objectRowsRead: number,
 *   objectRowsWritten: number, alarmWallMs: number, rescheduleRowsRead: number,
 *   rescheduleRowsWritten: number }} outboxFlush
 */

const { values } = parseArgs({
  options: {
    teams: { type: "string", default: "100000" },
    "spends-per-second": { type: "string", default: "20000" },
    "hot-team-share": { type: "string", default: "0.05" },
    "teams-active-share": { type: "string", default: "0.1" },
    "entries-per-spend": { type: "string" },
    "bytes-per-entry": { type: "string" },
    "message-bytes-per-entry": { type: "string" },
    "flush-delay-ms": { type: "string" },
    "retention-months": { type: "string", default: "12" },
    "worker-cpu-ms-per-request": { type: "string", default: "1" },
    "d1-us-per-row": { type: "string" },
    costs: { type: "string", default: new URL("../bench/costs.json", import.meta.url).pathname },
    json: { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
});

if (values.help) {
  console.log(`npm run capacity -- [--teams N] [--spends-per-second N] [--hot-team-share 0-1]
  [--teams-active-share 0-1] [--entries-per-spend N] [--bytes-per-entry N] [--message-bytes-per-entry N]
  [--flush-delay-ms N] [--retention-months N] [--worker-cpu-ms-per-request N] [--d1-us-per-row N]
  [--costs file] [--json]
Defaults for the per-spend figures come from bench/costs.json (npm run capacity:measure).`);
  process.exit(0);
}

/** @param {string} name @param {string | undefined} text @param {number} fallback */
function numberFlag(name, text, fallback) {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n < 0) {
    console.error(`--${name} must be a number ≥ 0, got ${JSON.stringify(text)}`);
    process.exit(2);
  }
  return n;
}

/** A `export const NAME = 1_000;` constant of a source file (the CLI runs without compiling TypeScript). */
function sourceConstant(/** @type {string} */ file, /** @type {string} */ name) {
  const text = readFileSync(new URL(`../${file}`, import.meta.url), "utf8");
  const m = new RegExp(`export const ${name} = ([0-9_]+);`).exec(text);
  if (!m?.[1]) throw new Error(`${name} not found in ${file}`);
  return Number(m[1].replaceAll("_", ""));
}

/** @type {MeasuredCosts} */
const measured = JSON.parse(readFileSync(values.costs, "utf8"));
const spend = measured.plainSpend;
const priced = measured.pricedSpend;
const flush = measured.outboxFlush;
const max = (/** @type {keyof SpendCosts} */ k) => Math.max(spend[k], priced[k]);

const teams = numberFlag("teams", values.teams, 0);
if (!Number.isInteger(teams) || teams < 1) {
  console.error("--teams must be a whole number ≥ 1");
  process.exit(2);
}
/** @type {CapacityInputs} */
const inputs = {
  teams,
  spendsPerSecond: numberFlag("spends-per-second", values["spends-per-second"], 0),
  hotTeamShare: Math.min(1, numberFlag("hot-team-share", values["hot-team-share"], 0)),
  teamsActiveShare: Math.min(1, numberFlag("teams-active-share", values["teams-active-share"], 0.1)),
  entriesPerSpend: numberFlag("entries-per-spend", values["entries-per-spend"], max("entriesPerSpend")),
  bytesPerEntry: numberFlag("bytes-per-entry", values["bytes-per-entry"], flush.d1DatabaseBytesPerEntry),
  messageBytesPerEntry: numberFlag(
    "message-bytes-per-entry",
    values["message-bytes-per-entry"],
    max("outboxJsonBytesPerEntry"),
  ),
  objectBytesPerSpend: max("databaseBytesPerSpend"),
  objectRowsReadPerSpend: max("rowsReadPerSpend"),
  objectRowsWrittenPerSpend: max("rowsWrittenPerSpend"),
  objectRowsReadPerFlushedEntry: flush.objectRowsRead / flush.entries,
  objectRowsWrittenPerFlush: flush.objectRowsWritten + flush.rescheduleRowsWritten,
  objectRowsReadPerFlush: flush.rescheduleRowsRead,
  // The spend that finds no alarm due sets one; the run sets the next (one, for a team always busy).
  alarmsSetPerFlush: 2,
  objectActiveMsPerRequest: max("requestWallMsPerSpend"),
  objectActiveMsPerFlush: flush.alarmWallMs,
  workerCpuMsPerRequest: numberFlag("worker-cpu-ms-per-request", values["worker-cpu-ms-per-request"], 1),
  d1RowsWrittenPerEntry: flush.d1RowsWrittenPerEntry,
  d1RowsReadPerEntry: flush.d1RowsReadPerEntry,
  d1UsPerRow: numberFlag("d1-us-per-row", values["d1-us-per-row"], flush.d1MedianUsPerRow),
  d1RowsPerStatement: sourceConstant("src/db/history.ts", "ROWS_PER_STATEMENT"),
  d1RowsPerBatchCall: sourceConstant("src/limits.ts", "OUTBOX_ROWS_PER_D1_BATCH"),
  flushDelayMs: numberFlag(
    "flush-delay-ms",
    values["flush-delay-ms"],
    sourceConstant("src/limits.ts", "OUTBOX_FLUSH_DELAY_MS"),
  ),
  retentionMonths: numberFlag("retention-months", values["retention-months"], 12),
};

const result = capacity(inputs);
if (values.json) {
  console.log(
    JSON.stringify(
      { measuredCosts: relative(process.cwd(), values.costs), measuredAt: measured.measuredAt, ...result },
      null,
      2,
    ),
  );
  process.exit(0);
}

/** @param {number} x @param {number} [digits] */
const n = (x, digits = 0) =>
  Number.isFinite(x)
    ? x.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : "∞";
/** Two significant figures at least, for factors and small amounts. */
const f = (/** @type {number} */ x) =>
  x === 0 ? "0" : x >= 100 ? n(x) : x >= 10 ? n(x, 1) : x >= 0.01 ? n(x, 2) : x.toExponential(1);
const usd = (/** @type {number} */ micro) => `$${n(micro / 1e6, 2)}`;
const pad = (/** @type {string} */ s, /** @type {number} */ w) => s.padEnd(w);
const rpad = (/** @type {string} */ s, /** @type {number} */ w) => s.padStart(w);
/** @param {LimitCheck} l */
const verdict = (l) => (l.ratio > 1 ? `crossed ×${f(l.ratio)}` : `headroom ×${f(1 / l.ratio)}`);

const { current, queue } = result.designs;
const lines = [];
lines.push(
  `Capacity model: ${n(inputs.teams)} teams, ${n(inputs.spendsPerSecond)} spends/s, hottest team ${n(inputs.hotTeamShare * 100, 1)}% of spends, ${n(inputs.teamsActiveShare * 100, 1)}% of teams active, ${n(inputs.retentionMonths)} months of history`,
  `Measured costs: ${relative(process.cwd(), values.costs)} (${measured.measuredAt}, ${measured.machine.cpus}); flush delay ${n(inputs.flushDelayMs)} ms, ${n(inputs.d1RowsPerStatement)} rows per D1 statement, ${n(inputs.d1RowsPerBatchCall)} per D1 batch (src/limits.ts, src/db/history.ts)`,
  `  per spend: ${f(inputs.entriesPerSpend)} entries, ${f(inputs.objectRowsWrittenPerSpend)} SQLite rows written, ${f(inputs.objectRowsReadPerSpend)} read, ${n(inputs.objectBytesPerSpend)} object bytes; per entry: ${n(inputs.bytesPerEntry)} D1 bytes, ${f(inputs.d1RowsWrittenPerEntry)} D1 rows written, ${n(inputs.messageBytesPerEntry)} bytes of outbox JSON`,
  "",
  "Objects",
  `  Durable Objects (one per team)         ${rpad(n(result.objects), 14)}`,
  `  active objects                         ${rpad(n(result.activeObjects), 14)}`,
  `  hottest object                         ${rpad(n(result.hotObjectRequestsPerSecond), 14)} requests/s (each other active object: ${f(result.otherObjectRequestsPerSecond)}/s)`,
  `  hottest object's alarm                 ${rpad(f(result.hotFlushesPerSecond), 14)} flushes/s of ${f(result.hotEntriesPerFlush)} entries (others: ${f(result.otherEntriesPerFlush)} entries a flush)`,
  "",
  `Replication to D1                        ${rpad("current design", 14)}  ${rpad("queue fan-in", 14)}`,
);
/** @param {string} label @param {number} a @param {number} b */
const row = (label, a, b) => lines.push(`  ${pad(label, 38)} ${rpad(f(a), 14)}  ${rpad(f(b), 14)}`);
row("alarm flushes/s (all teams)", current.flushesPerSecond, queue.flushesPerSecond);
row("queue messages/s (limit 5,000)", current.queueMessagesPerSecond, queue.queueMessagesPerSecond);
row("queue consumer invocations/s", current.queueConsumerInvocationsPerSecond, queue.queueConsumerInvocationsPerSecond);
row("D1 batch calls/s", current.d1BatchCallsPerSecond, queue.d1BatchCallsPerSecond);
row("D1 queries (statements)/s", current.d1QueriesPerSecond, queue.d1QueriesPerSecond);
row(
  "D1 rows written/s",
  result.entriesPerSecond * inputs.d1RowsWrittenPerEntry,
  result.entriesPerSecond * inputs.d1RowsWrittenPerEntry,
);
row("rows per query", current.d1RowsPerQuery, queue.d1RowsPerQuery);
row("ms per query", current.d1QueryMs, queue.d1QueryMs);
row("D1 busy ms per second (limit 1,000)", current.d1BusyMsPerSecond, queue.d1BusyMsPerSecond);
lines.push(
  `  hottest team's flush as a message: ${n(queue.largestMessageBytes)} bytes of 128,000 (${n(queue.messagesPerHotFlush)} message(s) a flush)`,
  "",
  "Storage",
  `  D1: ${f(result.d1GrowthGbPerMonth)} GB/month; ${f(result.monthsToD1Limit)} months to the 10 GB database limit (${f(result.monthsToD1Limit * 30 * 24)} hours)`,
  `  hottest object: ${f(result.hotObjectGrowthGbPerMonth)} GB/month; ${f(result.monthsToObjectLimit)} months to the 10 GB object limit`,
  "",
  `Limits                                                          ${rpad("load", 16)} ${rpad("limit", 16)}  verdict`,
);
for (const l of result.limits) {
  const tag = l.design === "both" ? "" : l.design === "current" ? " [current]" : " [queue]";
  lines.push(`  ${pad(l.what + tag, 62)} ${rpad(f(l.load), 16)} ${rpad(f(l.limit), 16)}  ${verdict(l)}`);
}
lines.push("", `${pad("Monthly cost (USD, 30-day month)", 72)} ${rpad("current", 14)} ${rpad("queue fan-in", 14)}`);
for (const line of queue.costs) {
  const mine = current.costs.find((c) => c.item === line.item);
  lines.push(
    `  ${pad(`${line.item} (${f(line.usage)} ${line.unit})`, 70)} ${rpad(mine ? usd(mine.costMicroUsd) : "-", 14)} ${rpad(usd(line.costMicroUsd), 14)}`,
  );
}
lines.push(`  ${pad("total", 70)} ${rpad(usd(current.totalMicroUsd), 14)} ${rpad(usd(queue.totalMicroUsd), 14)}`);
lines.push(
  "",
  "What breaks first",
  `  current design: ${current.breaksFirst.what}: ${f(current.breaksFirst.load)} against ${f(current.breaksFirst.limit)}, ${verdict(current.breaksFirst)}`,
  `  queue fan-in:   ${queue.breaksFirst.what}: ${f(queue.breaksFirst.load)} against ${f(queue.breaksFirst.limit)}, ${verdict(queue.breaksFirst)}`,
  "",
  "Sources (Workers Paid; * = not confirmed on the page, see the note)",
);
for (const [key, fig] of Object.entries(PLATFORM)) {
  lines.push(
    `  ${fig.confirmed ? " " : "*"}${key} = ${n(fig.value, fig.value < 1 ? 3 : 0)} ${fig.unit}: ${fig.source}`,
  );
  if (fig.note) lines.push(`      note: ${fig.note}`);
}
lines.push(
  "  Assumed, not measured: --worker-cpu-ms-per-request (default 1 ms). The object's active time per spend is",
  "  the whole request's wall time in the local test pool (an upper bound for the object alone).",
);
console.log(lines.join("\n"));
