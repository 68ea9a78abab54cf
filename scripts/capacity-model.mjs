// The capacity model's arithmetic (issue 13): from the platform's published limits and prices
// (PLATFORM, each figure with its source) and this project's measured costs (bench/costs.json,
// `npm run capacity:measure`), what a load needs: objects, the hottest object's load, D1 writes and
// storage, queue messages, the monthly bill, and which limit breaks first, for the current design
// (each team object's alarm writes its own batch to D1) and the queue fan-in (objects send batches
// to a Queue; one consumer writes many teams' entries in one D1 batch). Pure: no I/O, no clock.
// scripts/capacity.mjs is the command; test/domain/capacity.test.ts checks the arithmetic.

/**
 * A published figure: its value, its unit, the page it comes from, and whether the figure was
 * confirmed on that page (false: from a secondary source or not found; `note` says which).
 * @typedef {object} Figure
 * @property {number} value
 * @property {string} unit
 * @property {string} source URL and the figure as the page states it
 * @property {boolean} confirmed
 * @property {string} [note]
 */

const DO_LIMITS = "https://developers.cloudflare.com/durable-objects/platform/limits/";
const DO_PRICING = "https://developers.cloudflare.com/durable-objects/platform/pricing/";
const D1_LIMITS = "https://developers.cloudflare.com/d1/platform/limits/";
const D1_PRICING = "https://developers.cloudflare.com/d1/platform/pricing/";
const QUEUES_LIMITS = "https://developers.cloudflare.com/queues/platform/limits/";
const QUEUES_PRICING = "https://developers.cloudflare.com/queues/platform/pricing/";
const WORKERS_PRICING = "https://developers.cloudflare.com/workers/platform/pricing/";

/** Published limits and prices (Workers Paid plan, checked 2026-12-02). Prices in micro-USD. */
export const PLATFORM = Object.freeze({
  // ---- limits
  objectSoftRequestsPerSecond: {
    value: 1000,
    unit: "requests/s per object",
    source: `${DO_LIMITS} (FAQ "How much work can a single Durable Object do?"): "An individual Object has a soft limit of 1,000 requests per second"`,
    confirmed: true,
  },
  objectWritingRequestsPerSecondHigh: {
    value: 500,
    unit: "requests/s per object that writes on every request",
    source: "the 200–500/s range given for Durable Objects that write on every request (issue 13)",
    confirmed: false,
    note: "not found on the Durable Objects limits or FAQ pages, which give only the 1,000/s soft limit and say throughput falls with the work per request; one published end-to-end measurement of a writing object (lumenize.com, 2026) saw ~410/s, inside the range",
  },
  objectWritingRequestsPerSecondLow: {
    value: 200,
    unit: "requests/s per object that writes on every request",
    source: "the low end of the same 200–500/s range",
    confirmed: false,
    note: "as above",
  },
  objectStorageBytes: {
    value: 10e9,
    unit: "bytes per object (SQLite-backed)",
    source: `${DO_LIMITS}: "Storage per Durable Object 10 GB"`,
    confirmed: true,
  },
  d1DatabaseBytes: {
    value: 10e9,
    unit: "bytes per database",
    source: `${D1_LIMITS}: "Maximum database size 10 GB (Workers Paid)"; the FAQ: "the 10 GB limit of a D1 database cannot be further increased"`,
    confirmed: true,
  },
  d1BusyMsPerSecond: {
    value: 1000,
    unit: "ms of queries per second per database",
    source: `${D1_LIMITS} (FAQ "How much work can a D1 database do?"): "Each individual D1 database is inherently single-threaded, and processes queries one at a time … If your average query takes 1 ms, you can run approximately 1,000 queries per second"`,
    confirmed: true,
  },
  d1QueryMsFloor: {
    value: 1,
    unit: "ms per query (the FAQ's example duration, taken as the floor of a D1 write)",
    source: `${D1_LIMITS} FAQ, as above (1 ms → ~1,000 queries/s)`,
    confirmed: true,
    note: "the duration of a real D1 write is not published; 1 ms is the FAQ's example",
  },
  queueMessagesPerSecond: {
    value: 5000,
    unit: "messages/s per queue",
    source: `${QUEUES_LIMITS}: "Per-queue message throughput 5,000 messages per second"`,
    confirmed: true,
  },
  queueMessageBytes: {
    value: 128_000,
    unit: "bytes per message (1 KB = 1,000 bytes; ~100 bytes of it internal metadata)",
    source: `${QUEUES_LIMITS}: "Message size 128 KB"; "1 KB is measured as 1000 bytes. Messages can include up to ~100 bytes of internal metadata"`,
    confirmed: true,
  },
  queueMetadataBytes: {
    value: 100,
    unit: "bytes of internal metadata per message",
    source: `${QUEUES_LIMITS}: "~100 bytes of internal metadata"`,
    confirmed: true,
  },
  queueConsumerBatchMessages: {
    value: 100,
    unit: "messages per consumer batch",
    source: `${QUEUES_LIMITS}: "Maximum consumer batch size 100 messages"`,
    confirmed: true,
  },
  queueOperationBytes: {
    value: 64_000,
    unit: "bytes per billed operation",
    source: `${QUEUES_PRICING}: "An operation is counted for each 64 KB of data that is written, read, or deleted"; "A KB is defined as 1,000 bytes"`,
    confirmed: true,
  },
  queueOperationsPerMessage: {
    value: 3,
    unit: "operations per delivered message (write, read, delete)",
    source: `${QUEUES_PRICING}: "In most cases, it takes 3 operations to deliver a message: 1 write, 1 read, and 1 delete"`,
    confirmed: true,
  },
  objectMemoryGb: {
    value: 0.128,
    unit: "GB billed per active object (128 MB)",
    source: `${DO_PRICING}: "Duration billing charges for the 128 MB of memory your Durable Object is allocated"`,
    confirmed: true,
  },
  setAlarmRowsWritten: {
    value: 1,
    unit: "rows written per setAlarm()",
    source: `${DO_PRICING} (SQLite storage backend): setAlarm() is billed as one row written`,
    confirmed: false,
    note: "seen in a secondary summary of the pricing page (oflight.co.jp, 2026-07), not in the stored copy of the page",
  },
  // ---- prices (per month, Workers Paid)
  subscriptionMicroUsd: {
    value: 5_000_000,
    unit: "µUSD per month",
    source: `${WORKERS_PRICING}: "a minimum charge of $5 USD per month for an account"`,
    confirmed: true,
  },
  workerRequestsIncluded: {
    value: 10_000_000,
    unit: "requests per month",
    source: `${WORKERS_PRICING}: "10 million included per month"`,
    confirmed: true,
  },
  workerRequestPriceMicroUsdPerMillion: {
    value: 300_000,
    unit: "µUSD per million requests",
    source: `${WORKERS_PRICING}: "+$0.30 per additional million"`,
    confirmed: true,
  },
  workerCpuMsIncluded: {
    value: 30_000_000,
    unit: "CPU ms per month",
    source: `${WORKERS_PRICING}: "30 million CPU milliseconds included per month"`,
    confirmed: true,
  },
  workerCpuPriceMicroUsdPerMillionMs: {
    value: 20_000,
    unit: "µUSD per million CPU ms",
    source: `${WORKERS_PRICING}: "+$0.02 per additional million CPU milliseconds"`,
    confirmed: true,
  },
  objectRequestsIncluded: {
    value: 1_000_000,
    unit: "requests per month",
    source: `${DO_PRICING}: "Requests 1 million, + $0.15/million … Includes HTTP requests, RPC sessions, WebSocket messages, and alarm invocations"`,
    confirmed: true,
  },
  objectRequestPriceMicroUsdPerMillion: {
    value: 150_000,
    unit: "µUSD per million requests",
    source: `${DO_PRICING}: "+ $0.15/million"`,
    confirmed: true,
  },
  objectGbSecondsIncluded: {
    value: 400_000,
    unit: "GB-s per month",
    source: `${DO_PRICING}: "Duration 400,000 GB-s, + $12.50/million GB-s"`,
    confirmed: true,
  },
  objectGbSecondPriceMicroUsdPerMillion: {
    value: 12_500_000,
    unit: "µUSD per million GB-s",
    source: `${DO_PRICING}: "+ $12.50/million GB-s"`,
    confirmed: true,
  },
  objectRowsReadIncluded: {
    value: 25e9,
    unit: "rows per month",
    source: `${DO_PRICING} (SQLite storage backend): rows read, first 25 billion / month included + $0.001 / million`,
    confirmed: false,
    note: "figures from the changelog's link to this section and a secondary summary (oflight.co.jp); the stored copies of the page end before the storage table",
  },
  objectRowReadPriceMicroUsdPerMillion: {
    value: 1_000,
    unit: "µUSD per million rows",
    source: `${DO_PRICING} (SQLite storage backend): "+ $0.001 / million rows"`,
    confirmed: false,
    note: "as above",
  },
  objectRowsWrittenIncluded: {
    value: 50_000_000,
    unit: "rows per month",
    source: `${DO_PRICING} (SQLite storage backend): rows written, first 50 million / month included + $1.00 / million`,
    confirmed: false,
    note: "as above",
  },
  objectRowWrittenPriceMicroUsdPerMillion: {
    value: 1_000_000,
    unit: "µUSD per million rows",
    source: `${DO_PRICING} (SQLite storage backend): "+ $1.00 / million rows"`,
    confirmed: false,
    note: "as above",
  },
  objectStorageGbMonthsIncluded: {
    value: 5,
    unit: "GB-month",
    source: `${DO_PRICING} (SQLite storage backend): stored data 5 GB-month included + $0.20 / GB-month`,
    confirmed: false,
    note: "as above",
  },
  objectStoragePriceMicroUsdPerGbMonth: {
    value: 200_000,
    unit: "µUSD per GB-month",
    source: `${DO_PRICING} (SQLite storage backend): "+ $0.20 / GB-month"`,
    confirmed: false,
    note: "as above",
  },
  d1RowsReadIncluded: {
    value: 25e9,
    unit: "rows per month",
    source: `${D1_PRICING}: "Rows read … First 25 billion / month included + $0.001 / million rows"`,
    confirmed: true,
  },
  d1RowReadPriceMicroUsdPerMillion: {
    value: 1_000,
    unit: "µUSD per million rows",
    source: `${D1_PRICING}: "+ $0.001 / million rows"`,
    confirmed: true,
  },
  d1RowsWrittenIncluded: {
    value: 50_000_000,
    unit: "rows per month",
    source: `${D1_PRICING}: "Rows written … First 50 million / month included + $1.00 / million rows"`,
    confirmed: true,
  },
  d1RowWrittenPriceMicroUsdPerMillion: {
    value: 1_000_000,
    unit: "µUSD per million rows",
    source: `${D1_PRICING}: "+ $1.00 / million rows"`,
    confirmed: true,
  },
  d1StorageGbMonthsIncluded: {
    value: 5,
    unit: "GB-month",
    source: `${D1_PRICING}: "Storage (per GB stored) … First 5 GB included + $0.75 / GB-mo"`,
    confirmed: true,
  },
  d1StoragePriceMicroUsdPerGbMonth: {
    value: 750_000,
    unit: "µUSD per GB-month",
    source: `${D1_PRICING}: "+ $0.75 / GB-mo"`,
    confirmed: true,
  },
  queueOperationsIncluded: {
    value: 1_000_000,
    unit: "operations per month",
    source: `${QUEUES_PRICING}: "Standard operations 1,000,000 operations / month"`,
    confirmed: true,
  },
  queueOperationPriceMicroUsdPerMillion: {
    value: 400_000,
    unit: "µUSD per million operations",
    source: `${QUEUES_PRICING}: "$0.40 / million operations"`,
    confirmed: true,
  },
});

/** Seconds in the 30-day month Cloudflare's pricing examples use. */
export const SECONDS_PER_MONTH = 30 * 24 * 60 * 60;

/**
 * What the model needs. Counts are integers; rates are per second; sizes in bytes.
 * @typedef {object} CapacityInputs
 * @property {number} teams teams with a ledger (one Durable Object each)
 * @property {number} spendsPerSecond spends per second across all teams
 * @property {number} hotTeamShare the hottest team's share of the spends (0–1)
 * @property {number} teamsActiveShare share of teams that spend in a given second (0–1); the rest is spread evenly over them
 * @property {number} entriesPerSpend ledger entries one spend writes
 * @property {number} bytesPerEntry D1 storage one entry takes (row and indexes)
 * @property {number} messageBytesPerEntry an entry's JSON row as the outbox sends it
 * @property {number} objectBytesPerSpend the team object's databaseSize growth per spend
 * @property {number} objectRowsReadPerSpend SQLite rows one spend reads in the team object
 * @property {number} objectRowsWrittenPerSpend SQLite rows one spend writes in the team object
 * @property {number} objectRowsReadPerFlushedEntry SQLite rows an alarm reads per entry it delivers
 * @property {number} objectRowsWrittenPerFlush SQLite rows an alarm run writes (the outbox mark)
 * @property {number} objectRowsReadPerFlush SQLite rows read once a flush cycle (the next spend asking what is due)
 * @property {number} alarmsSetPerFlush setAlarm() calls a flush cycle (the spend that sets it, the run that sets the next)
 * @property {number} objectActiveMsPerRequest wall time a spend keeps the object active
 * @property {number} objectActiveMsPerFlush wall time an alarm run keeps the object active
 * @property {number} workerCpuMsPerRequest CPU time the worker spends on a spend
 * @property {number} d1RowsWrittenPerEntry D1 rows written per entry (the row and each index)
 * @property {number} d1RowsReadPerEntry D1 rows read per entry inserted
 * @property {number} d1UsPerRow D1 time per inserted row
 * @property {number} d1RowsPerStatement rows per INSERT statement (src/db/history.ts ROWS_PER_STATEMENT)
 * @property {number} d1RowsPerBatchCall rows per D1 batch call of one team (src/limits.ts OUTBOX_ROWS_PER_D1_BATCH)
 * @property {number} flushDelayMs how long entries wait in the outbox before the alarm sends them (src/limits.ts OUTBOX_FLUSH_DELAY_MS)
 * @property {number} retentionMonths months of history kept (in the objects and in D1)
 */

/**
 * One limit against its load: ratio > 1 means the limit is crossed by that factor; below 1,
 * 1 / ratio is the headroom.
 * @typedef {object} LimitCheck
 * @property {string} id
 * @property {string} what
 * @property {"rate" | "storage"} kind a rate is crossed at once; storage after `retentionMonths / ratio` months
 * @property {"both" | "current" | "queue"} design
 * @property {number} load
 * @property {number} limit
 * @property {string} unit
 * @property {number} ratio load / limit
 * @property {string} source
 */

/**
 * @typedef {object} CostLine
 * @property {string} item
 * @property {number} usage billed quantity this month, before the included amount
 * @property {string} unit
 * @property {number} costMicroUsd
 */

/**
 * @typedef {object} DesignResult
 * @property {number} flushesPerSecond alarm runs that deliver entries, all teams
 * @property {number} d1BatchCallsPerSecond
 * @property {number} d1QueriesPerSecond statements D1 executes, one at a time
 * @property {number} d1RowsPerQuery
 * @property {number} d1QueryMs
 * @property {number} d1BusyMsPerSecond
 * @property {number} queueMessagesPerSecond 0 in the current design
 * @property {number} queueConsumerInvocationsPerSecond
 * @property {number} largestMessageBytes the hottest team's flush as one message (0 in the current design)
 * @property {number} messagesPerHotFlush messages the hottest team's flush takes (split at the message size)
 * @property {CostLine[]} costs
 * @property {number} totalMicroUsd
 * @property {LimitCheck} breaksFirst
 */

/**
 * @typedef {object} CapacityResult
 * @property {CapacityInputs} inputs
 * @property {number} objects one per team
 * @property {number} activeObjects
 * @property {number} hotObjectRequestsPerSecond
 * @property {number} otherObjectRequestsPerSecond each of the other active objects
 * @property {number} entriesPerSecond
 * @property {number} hotFlushesPerSecond
 * @property {number} hotEntriesPerFlush
 * @property {number} otherEntriesPerFlush
 * @property {number} d1GrowthGbPerMonth
 * @property {number} monthsToD1Limit
 * @property {number} hotObjectGrowthGbPerMonth
 * @property {number} monthsToObjectLimit
 * @property {{ current: DesignResult, queue: DesignResult }} designs
 * @property {LimitCheck[]} limits every limit, both designs
 */

/**
 * Alarm runs per second of a team that spends `spendsPerSecond`: a spend sets the alarm
 * `flushDelayMs` ahead (unless one is due sooner), and the run sends what came meanwhile, so a cycle
 * is the wait for the next spend (1/r) plus the delay (d): r / (1 + r·d).
 * @example flushesPerSecond(10, 100) // 5: each flush carries 2 spends
 * @param {number} spendsPerSecond
 * @param {number} flushDelayMs
 */
export function flushesPerSecond(spendsPerSecond, flushDelayMs) {
  if (spendsPerSecond <= 0) return 0;
  return spendsPerSecond / (1 + (spendsPerSecond * flushDelayMs) / 1000);
}

/**
 * The cost above the included amount, in integer micro-USD.
 * @example billedMicroUsd(15_000_000, 10_000_000, 300_000) // 1_500_000 ($1.50)
 * @param {number} usage
 * @param {number} included
 * @param {number} priceMicroUsdPerUnitBlock price per `block` units
 * @param {number} [block] units the price is for (a million unless said)
 */
export function billedMicroUsd(usage, included, priceMicroUsdPerUnitBlock, block = 1_000_000) {
  return Math.round((Math.max(0, usage - included) / block) * priceMicroUsdPerUnitBlock);
}

/**
 * @param {string} id
 * @param {string} what
 * @param {"rate" | "storage"} kind
 * @param {"both" | "current" | "queue"} design
 * @param {number} load
 * @param {Figure} figure
 * @returns {LimitCheck}
 */
function check(id, what, kind, design, load, figure) {
  return {
    id,
    what,
    kind,
    design,
    load,
    limit: figure.value,
    unit: figure.unit,
    ratio: load / figure.value,
    source: figure.source,
  };
}

/**
 * The first limit crossed. A rate limit already crossed breaks at once, so the most overloaded of
 * those comes first; storage fills over time, so a storage limit comes first only when no rate is
 * over its limit. Otherwise the limit with the least headroom (the largest load / limit) is the
 * first one crossed as the load grows, every load here being proportional to the spends.
 * @example breaksFirst([{ kind: "rate", ratio: 2 }, { kind: "storage", ratio: 90 }]) // the rate
 * @param {LimitCheck[]} limits
 * @returns {LimitCheck}
 */
export function breaksFirst(limits) {
  const crossedRates = limits.filter((l) => l.kind === "rate" && l.ratio > 1);
  const [first, ...rest] = crossedRates.length > 0 ? crossedRates : limits;
  if (first === undefined) throw new Error("breaksFirst: no limits");
  return rest.reduce((worst, l) => (l.ratio > worst.ratio ? l : worst), first);
}

/**
 * The whole model: both designs, their limits and their monthly bills.
 * @param {CapacityInputs} inputs
 * @returns {CapacityResult}
 */
export function capacity(inputs) {
  const p = PLATFORM;
  const i = inputs;
  const activeObjects = Math.min(i.teams, Math.max(1, Math.round(i.teams * i.teamsActiveShare)));
  const others = activeObjects - 1;
  // With no other active team, the one team takes every spend.
  const hotRate = others > 0 ? i.spendsPerSecond * i.hotTeamShare : i.spendsPerSecond;
  const otherRate = others > 0 ? (i.spendsPerSecond - hotRate) / others : 0;
  // The busiest object: the hot team's, unless its share is below an even one.
  const busiestRate = Math.max(hotRate, otherRate);
  const entriesPerSecond = i.spendsPerSecond * i.entriesPerSpend;
  const hotFlushes = flushesPerSecond(hotRate, i.flushDelayMs);
  const otherFlushes = flushesPerSecond(otherRate, i.flushDelayMs);
  const hotEntriesPerFlush = hotFlushes > 0 ? (hotRate * i.entriesPerSpend) / hotFlushes : 0;
  const otherEntriesPerFlush = otherFlushes > 0 ? (otherRate * i.entriesPerSpend) / otherFlushes : 0;
  const allFlushes = hotFlushes + others * otherFlushes;
  const spendsPerMonth = i.spendsPerSecond * SECONDS_PER_MONTH;
  const entriesPerMonth = entriesPerSecond * SECONDS_PER_MONTH;
  const flushesPerMonth = allFlushes * SECONDS_PER_MONTH;

  // Storage: objects keep every entry (the entries table is the outbox); D1 keeps the history.
  const d1GrowthBytesPerMonth = entriesPerMonth * i.bytesPerEntry;
  const hotObjectGrowthBytesPerMonth = busiestRate * SECONDS_PER_MONTH * i.objectBytesPerSpend;
  const d1StoredGb = (d1GrowthBytesPerMonth * i.retentionMonths) / 1e9;
  const objectsStoredGb = (spendsPerMonth * i.objectBytesPerSpend * i.retentionMonths) / 1e9;

  // Costs both designs share: the worker, the objects (spends and alarm runs), D1's rows and bytes.
  const activeSeconds = (/** @type {number} */ rate, /** @type {number} */ flushes) =>
    Math.min(1, (rate * i.objectActiveMsPerRequest + flushes * i.objectActiveMsPerFlush) / 1000);
  const objectGbSeconds =
    (activeSeconds(hotRate, hotFlushes) + others * activeSeconds(otherRate, otherFlushes)) *
    p.objectMemoryGb.value *
    SECONDS_PER_MONTH;
  const objectRowsRead =
    spendsPerMonth * i.objectRowsReadPerSpend +
    entriesPerMonth * i.objectRowsReadPerFlushedEntry +
    flushesPerMonth * i.objectRowsReadPerFlush;
  const objectRowsWritten =
    spendsPerMonth * i.objectRowsWrittenPerSpend +
    flushesPerMonth * (i.objectRowsWrittenPerFlush + i.alarmsSetPerFlush * p.setAlarmRowsWritten.value);
  const d1RowsWritten = entriesPerMonth * i.d1RowsWrittenPerEntry;
  const d1RowsRead = entriesPerMonth * i.d1RowsReadPerEntry;
  /** @param {number} consumerInvocationsPerMonth @returns {CostLine[]} */
  const sharedCosts = (consumerInvocationsPerMonth) => {
    // Queue consumer invocations are counted as Workers requests (how they are billed is not
    // confirmed on the pricing pages; at ~1% of the spends it moves little).
    const workerRequests = spendsPerMonth + consumerInvocationsPerMonth;
    return [
      { item: "Workers subscription", usage: 1, unit: "month", costMicroUsd: p.subscriptionMicroUsd.value },
      {
        item: "Workers requests",
        usage: workerRequests,
        unit: "requests",
        costMicroUsd: billedMicroUsd(
          workerRequests,
          p.workerRequestsIncluded.value,
          p.workerRequestPriceMicroUsdPerMillion.value,
        ),
      },
      {
        item: "Workers CPU",
        usage: workerRequests * i.workerCpuMsPerRequest,
        unit: "CPU ms",
        costMicroUsd: billedMicroUsd(
          workerRequests * i.workerCpuMsPerRequest,
          p.workerCpuMsIncluded.value,
          p.workerCpuPriceMicroUsdPerMillionMs.value,
        ),
      },
      {
        item: "Durable Object requests (spends + alarm runs)",
        usage: spendsPerMonth + flushesPerMonth,
        unit: "requests",
        costMicroUsd: billedMicroUsd(
          spendsPerMonth + flushesPerMonth,
          p.objectRequestsIncluded.value,
          p.objectRequestPriceMicroUsdPerMillion.value,
        ),
      },
      {
        item: "Durable Object duration",
        usage: objectGbSeconds,
        unit: "GB-s",
        costMicroUsd: billedMicroUsd(
          objectGbSeconds,
          p.objectGbSecondsIncluded.value,
          p.objectGbSecondPriceMicroUsdPerMillion.value,
        ),
      },
      {
        item: "Durable Object SQLite rows read",
        usage: objectRowsRead,
        unit: "rows",
        costMicroUsd: billedMicroUsd(
          objectRowsRead,
          p.objectRowsReadIncluded.value,
          p.objectRowReadPriceMicroUsdPerMillion.value,
        ),
      },
      {
        item: "Durable Object SQLite rows written",
        usage: objectRowsWritten,
        unit: "rows",
        costMicroUsd: billedMicroUsd(
          objectRowsWritten,
          p.objectRowsWrittenIncluded.value,
          p.objectRowWrittenPriceMicroUsdPerMillion.value,
        ),
      },
      {
        item: `Durable Object storage (after ${i.retentionMonths} months)`,
        usage: objectsStoredGb,
        unit: "GB-month",
        costMicroUsd: billedMicroUsd(
          objectsStoredGb,
          p.objectStorageGbMonthsIncluded.value,
          p.objectStoragePriceMicroUsdPerGbMonth.value,
          1,
        ),
      },
      {
        item: "D1 rows written",
        usage: d1RowsWritten,
        unit: "rows",
        costMicroUsd: billedMicroUsd(
          d1RowsWritten,
          p.d1RowsWrittenIncluded.value,
          p.d1RowWrittenPriceMicroUsdPerMillion.value,
        ),
      },
      {
        item: "D1 rows read",
        usage: d1RowsRead,
        unit: "rows",
        costMicroUsd: billedMicroUsd(d1RowsRead, p.d1RowsReadIncluded.value, p.d1RowReadPriceMicroUsdPerMillion.value),
      },
      {
        item: `D1 storage (after ${i.retentionMonths} months)`,
        usage: d1StoredGb,
        unit: "GB-month",
        costMicroUsd: billedMicroUsd(
          d1StoredGb,
          p.d1StorageGbMonthsIncluded.value,
          p.d1StoragePriceMicroUsdPerGbMonth.value,
          1,
        ),
      },
    ];
  };

  /** @param {number} queries @param {number} rows */
  const queryMs = (queries, rows) =>
    queries > 0 ? Math.max(p.d1QueryMsFloor.value, ((rows / queries) * i.d1UsPerRow) / 1000) : 0;

  // Current design: every flush is its own D1 batch call, its rows packed ROWS_PER_STATEMENT a statement.
  /** @param {number} flushes @param {number} entriesPerFlush */
  const perFlush = (flushes, entriesPerFlush, /** @type {number} */ rowsPer) =>
    entriesPerFlush > 0 ? flushes * Math.ceil(entriesPerFlush / rowsPer) : 0;
  const currentQueries =
    perFlush(hotFlushes, hotEntriesPerFlush, i.d1RowsPerStatement) +
    others * perFlush(otherFlushes, otherEntriesPerFlush, i.d1RowsPerStatement);
  const currentBatchCalls =
    perFlush(hotFlushes, hotEntriesPerFlush, i.d1RowsPerBatchCall) +
    others * perFlush(otherFlushes, otherEntriesPerFlush, i.d1RowsPerBatchCall);
  const currentQueryMs = queryMs(currentQueries, entriesPerSecond);
  const currentCosts = sharedCosts(0);
  /** @type {Omit<DesignResult, "breaksFirst">} */
  const current = {
    flushesPerSecond: allFlushes,
    d1BatchCallsPerSecond: currentBatchCalls,
    d1QueriesPerSecond: currentQueries,
    d1RowsPerQuery: currentQueries > 0 ? entriesPerSecond / currentQueries : 0,
    d1QueryMs: currentQueryMs,
    d1BusyMsPerSecond: currentQueries * currentQueryMs,
    queueMessagesPerSecond: 0,
    queueConsumerInvocationsPerSecond: 0,
    largestMessageBytes: 0,
    messagesPerHotFlush: 0,
    costs: currentCosts,
    totalMicroUsd: currentCosts.reduce((sum, c) => sum + c.costMicroUsd, 0),
  };

  // Queue fan-in: each flush is a message (split when larger than a message); the consumer takes up
  // to 100 messages a batch and writes all their entries in one D1 batch.
  const messageCapacityBytes = p.queueMessageBytes.value - p.queueMetadataBytes.value;
  /** @param {number} entriesPerFlush */
  const messagesPerFlush = (entriesPerFlush) =>
    entriesPerFlush > 0 ? Math.ceil((entriesPerFlush * i.messageBytesPerEntry) / messageCapacityBytes) : 0;
  const messages =
    hotFlushes * messagesPerFlush(hotEntriesPerFlush) + others * otherFlushes * messagesPerFlush(otherEntriesPerFlush);
  const invocations = messages / p.queueConsumerBatchMessages.value;
  const entriesPerInvocation = invocations > 0 ? entriesPerSecond / invocations : 0;
  const queueQueries = invocations * Math.ceil(entriesPerInvocation / i.d1RowsPerStatement);
  const queueQueryMs = queryMs(queueQueries, entriesPerSecond);
  const messageBytes =
    messages > 0 ? (entriesPerSecond * i.messageBytesPerEntry) / messages + p.queueMetadataBytes.value : 0;
  const operationsPerMessage =
    p.queueOperationsPerMessage.value * Math.max(1, Math.ceil(messageBytes / p.queueOperationBytes.value));
  const queueOperations = messages * SECONDS_PER_MONTH * operationsPerMessage;
  const queueCosts = [
    ...sharedCosts(invocations * SECONDS_PER_MONTH),
    {
      item: "Queues operations",
      usage: queueOperations,
      unit: "operations",
      costMicroUsd: billedMicroUsd(
        queueOperations,
        p.queueOperationsIncluded.value,
        p.queueOperationPriceMicroUsdPerMillion.value,
      ),
    },
  ];
  /** @type {Omit<DesignResult, "breaksFirst">} */
  const queue = {
    flushesPerSecond: allFlushes,
    d1BatchCallsPerSecond: invocations,
    d1QueriesPerSecond: queueQueries,
    d1RowsPerQuery: queueQueries > 0 ? entriesPerSecond / queueQueries : 0,
    d1QueryMs: queueQueryMs,
    d1BusyMsPerSecond: queueQueries * queueQueryMs,
    queueMessagesPerSecond: messages,
    queueConsumerInvocationsPerSecond: invocations,
    largestMessageBytes: Math.round(
      Math.min(hotEntriesPerFlush * i.messageBytesPerEntry + p.queueMetadataBytes.value, p.queueMessageBytes.value),
    ),
    messagesPerHotFlush: messagesPerFlush(hotEntriesPerFlush),
    costs: queueCosts,
    totalMicroUsd: queueCosts.reduce((sum, c) => sum + c.costMicroUsd, 0),
  };

  const d1Growth = d1GrowthBytesPerMonth;
  const limits = [
    check("object-soft", "hottest object, requests/s", "rate", "both", busiestRate, p.objectSoftRequestsPerSecond),
    check(
      "object-writes-high",
      "hottest object, requests/s (writes on every request, high end)",
      "rate",
      "both",
      busiestRate,
      p.objectWritingRequestsPerSecondHigh,
    ),
    check(
      "object-writes-low",
      "hottest object, requests/s (writes on every request, low end)",
      "rate",
      "both",
      busiestRate,
      p.objectWritingRequestsPerSecondLow,
    ),
    check(
      "object-storage",
      `hottest object's storage after ${i.retentionMonths} months, bytes`,
      "storage",
      "both",
      hotObjectGrowthBytesPerMonth * i.retentionMonths,
      p.objectStorageBytes,
    ),
    check(
      "d1-storage",
      `D1 storage after ${i.retentionMonths} months, bytes`,
      "storage",
      "both",
      d1Growth * i.retentionMonths,
      p.d1DatabaseBytes,
    ),
    check(
      "d1-busy-current",
      "D1 busy time, current design (ms/s)",
      "rate",
      "current",
      current.d1BusyMsPerSecond,
      p.d1BusyMsPerSecond,
    ),
    check(
      "d1-busy-queue",
      "D1 busy time, queue fan-in (ms/s)",
      "rate",
      "queue",
      queue.d1BusyMsPerSecond,
      p.d1BusyMsPerSecond,
    ),
    check("queue-messages", "queue messages/s, queue fan-in", "rate", "queue", messages, p.queueMessagesPerSecond),
  ];
  const forDesign = (/** @type {"current" | "queue"} */ d) =>
    limits.filter((l) => l.design === "both" || l.design === d);
  return {
    inputs,
    objects: i.teams,
    activeObjects,
    hotObjectRequestsPerSecond: busiestRate,
    otherObjectRequestsPerSecond: otherRate,
    entriesPerSecond,
    hotFlushesPerSecond: hotFlushes,
    hotEntriesPerFlush,
    otherEntriesPerFlush,
    d1GrowthGbPerMonth: d1Growth / 1e9,
    monthsToD1Limit: d1Growth > 0 ? p.d1DatabaseBytes.value / d1Growth : Number.POSITIVE_INFINITY,
    hotObjectGrowthGbPerMonth: hotObjectGrowthBytesPerMonth / 1e9,
    monthsToObjectLimit:
      hotObjectGrowthBytesPerMonth > 0
        ? p.objectStorageBytes.value / hotObjectGrowthBytesPerMonth
        : Number.POSITIVE_INFINITY,
    designs: {
      current: { ...current, breaksFirst: breaksFirst(forDesign("current")) },
      queue: { ...queue, breaksFirst: breaksFirst(forDesign("queue")) },
    },
    limits,
  };
}
