/**
 * The capacity model's arithmetic (scripts/capacity-model.mjs) against figures computed by hand:
 * objects and the hottest object's load, alarm flushes, D1 queries and busy time for both designs,
 * queue messages, storage growth and months to 10 GB, the bill's lines, and which limit breaks first.
 */
import { describe, expect, it } from "vitest";
import {
  billedMicroUsd,
  type CapacityInputs,
  capacity,
  flushesPerSecond,
  PLATFORM,
  SECONDS_PER_MONTH,
} from "../../scripts/capacity-model.mjs";

/** 11 active teams: the hot one at 100 spends/s, ten others at 10/s each; 100 ms flush delay. */
const base: CapacityInputs = {
  teams: 110,
  spendsPerSecond: 200,
  hotTeamShare: 0.5,
  teamsActiveShare: 0.1,
  entriesPerSpend: 1,
  bytesPerEntry: 500,
  messageBytesPerEntry: 300,
  objectBytesPerSpend: 1500,
  objectRowsReadPerSpend: 20,
  objectRowsWrittenPerSpend: 5,
  objectRowsReadPerFlushedEntry: 1,
  objectRowsWrittenPerFlush: 1,
  objectRowsReadPerFlush: 10,
  alarmsSetPerFlush: 2,
  objectActiveMsPerRequest: 1,
  objectActiveMsPerFlush: 10,
  workerCpuMsPerRequest: 1,
  d1RowsWrittenPerEntry: 5,
  d1RowsReadPerEntry: 1,
  d1UsPerRow: 10,
  d1RowsPerStatement: 100,
  d1RowsPerBatchCall: 500,
  flushDelayMs: 100,
  retentionMonths: 12,
};

const costOf = (lines: { item: string; costMicroUsd: number }[], prefix: string) => {
  const line = lines.find((l) => l.item.startsWith(prefix));
  if (!line) throw new Error(`no cost line ${prefix}`);
  return line.costMicroUsd;
};

describe("capacity model", () => {
  it("a team's alarm flushes r / (1 + r·d) times a second", () => {
    expect(flushesPerSecond(10, 100)).toBe(5); // a spend, then 100 ms: 2 spends a flush
    expect(flushesPerSecond(100, 100)).toBeCloseTo(100 / 11, 10); // 11 spends a flush
    expect(flushesPerSecond(0, 200)).toBe(0);
    expect(SECONDS_PER_MONTH).toBe(2_592_000);
  });

  it("counts objects and the hottest object's load", () => {
    const r = capacity(base);
    expect(r.objects).toBe(110);
    expect(r.activeObjects).toBe(11);
    expect(Number.isInteger(r.activeObjects)).toBe(true);
    expect(r.hotObjectRequestsPerSecond).toBe(100);
    expect(r.otherObjectRequestsPerSecond).toBe(10);
    expect(r.hotEntriesPerFlush).toBeCloseTo(11, 10);
    expect(r.otherEntriesPerFlush).toBeCloseTo(2, 10);
    const soft = r.limits.find((l) => l.id === "object-soft");
    expect(soft?.ratio).toBeCloseTo(0.1, 10); // 100 against 1,000
    expect(r.limits.find((l) => l.id === "object-writes-low")?.ratio).toBeCloseTo(0.5, 10); // 100 against 200
  });

  it("one active team takes every spend; a hot share below an even one leaves another object the busiest", () => {
    const alone = capacity({ ...base, teams: 1, teamsActiveShare: 1, hotTeamShare: 0.05 });
    expect(alone.activeObjects).toBe(1);
    expect(alone.hotObjectRequestsPerSecond).toBe(200);
    // 11 active teams, the "hot" one at 1% (2/s): each other takes 198 / 10 = 19.8/s.
    const flat = capacity({ ...base, hotTeamShare: 0.01 });
    expect(flat.hotObjectRequestsPerSecond).toBeCloseTo(19.8, 9);
    expect(flat.limits.find((l) => l.id === "object-soft")?.load).toBeCloseTo(19.8, 9);
  });

  it("current design: one D1 batch call a flush, a statement per 100 rows", () => {
    const { current } = capacity(base).designs;
    // hot: 100/11 flushes of 11 entries (1 statement each); others: 10 × 5 flushes of 2 entries.
    expect(current.flushesPerSecond).toBeCloseTo(100 / 11 + 50, 9);
    expect(current.d1BatchCallsPerSecond).toBeCloseTo(100 / 11 + 50, 9);
    expect(current.d1QueriesPerSecond).toBeCloseTo(100 / 11 + 50, 9);
    expect(current.d1QueryMs).toBe(1); // 3.4 rows × 10 µs is below the 1 ms floor
    expect(current.d1BusyMsPerSecond).toBeCloseTo(100 / 11 + 50, 9);
    expect(current.queueMessagesPerSecond).toBe(0);

    // A 1 s delay: the hot team's flush carries 101 entries, two statements.
    const slow = capacity({ ...base, flushDelayMs: 1000 }).designs.current;
    expect(slow.d1QueriesPerSecond).toBeCloseTo((100 / 101) * 2 + 10 * (10 / 11), 9);
    expect(slow.d1BatchCallsPerSecond).toBeCloseTo(100 / 101 + 10 * (10 / 11), 9);
  });

  it("queue fan-in: a message a flush, 100 messages a consumer batch, one D1 batch each", () => {
    const { queue } = capacity(base).designs;
    const messages = 100 / 11 + 50;
    expect(queue.queueMessagesPerSecond).toBeCloseTo(messages, 9);
    expect(queue.queueConsumerInvocationsPerSecond).toBeCloseTo(messages / 100, 9);
    expect(queue.d1BatchCallsPerSecond).toBeCloseTo(messages / 100, 9);
    // 200 entries/s over 0.59 invocations/s = 338.5 entries each: 4 statements.
    expect(queue.d1QueriesPerSecond).toBeCloseTo((messages / 100) * 4, 9);
    expect(queue.d1BusyMsPerSecond).toBeCloseTo((messages / 100) * 4, 9); // 84.6 rows × 10 µs < 1 ms
    expect(queue.messagesPerHotFlush).toBe(1);
    expect(queue.largestMessageBytes).toBe(11 * 300 + 100);
    expect(capacity(base).limits.find((l) => l.id === "queue-messages")?.ratio).toBeCloseTo(messages / 5000, 9);

    // A flush larger than a message is split: 1,000 entries of 300 bytes take 3 messages of 127,900.
    const big = capacity({ ...base, spendsPerSecond: 2000, hotTeamShare: 1, flushDelayMs: 499.5 }).designs.queue;
    expect(big.messagesPerHotFlush).toBe(3);
    expect(big.largestMessageBytes).toBe(128_000);
  });

  it("storage growth and months to 10 GB", () => {
    // 1 entry/s of 1,000 bytes: 2.592 GB a month, 10 / 2.592 = 3.858 months.
    const r = capacity({
      ...base,
      spendsPerSecond: 1,
      bytesPerEntry: 1000,
      objectBytesPerSpend: 1000,
      hotTeamShare: 1,
    });
    expect(r.d1GrowthGbPerMonth).toBeCloseTo(2.592, 9);
    expect(r.monthsToD1Limit).toBeCloseTo(3.858, 3);
    expect(r.hotObjectGrowthGbPerMonth).toBeCloseTo(2.592, 9);
    expect(r.monthsToObjectLimit).toBeCloseTo(3.858, 3);
    // 12 months of history need 31.1 GB: 3.11 times the database.
    expect(r.limits.find((l) => l.id === "d1-storage")?.ratio).toBeCloseTo((2.592 * 12) / 10, 9);
  });

  it("prices the month above the included amounts", () => {
    expect(billedMicroUsd(15_000_000, 10_000_000, 300_000)).toBe(1_500_000); // Cloudflare's Workers example
    expect(billedMicroUsd(5_000_000, 10_000_000, 300_000)).toBe(0);
    const { current, queue } = capacity(base).designs;
    const spendsPerMonth = 200 * 2_592_000; // 518.4 million
    expect(costOf(current.costs, "Workers requests")).toBe(Math.round((spendsPerMonth - 10e6) * 0.3)); // $152.52
    expect(costOf(current.costs, "D1 rows written")).toBe(Math.round(spendsPerMonth * 5 - 50e6)); // $2,542
    // 12 months of 200 entries/s × 500 bytes: 3,110.4 GB, 5 included, $0.75 each.
    expect(costOf(current.costs, "D1 storage")).toBe(Math.round((3110.4 - 5) * 750_000));
    // Queue: 59.09 messages/s × 3 operations (each under 64 KB), 1 million included, $0.40 a million.
    const operations = (100 / 11 + 50) * 2_592_000 * 3;
    expect(costOf(queue.costs, "Queues operations")).toBe(Math.round((operations - 1e6) * 0.4));
    // Object rows written: 5 a spend, and per flush the outbox mark and two setAlarm calls.
    const flushesPerMonth = (100 / 11 + 50) * 2_592_000;
    expect(costOf(current.costs, "Durable Object SQLite rows written")).toBe(
      Math.round(spendsPerMonth * 5 + flushesPerMonth * 3 - 50e6),
    );
    expect(current.costs.some((c) => c.item.startsWith("Queues"))).toBe(false);
    expect(current.totalMicroUsd).toBe(current.costs.reduce((s, c) => s + c.costMicroUsd, 0));
  });

  it("what breaks first: D1 in the current design, the queue's messages/s with the fan-in", () => {
    // 100,000 active teams at ~0.2 spends/s: nearly a flush per spend, ~19,600 flushes/s.
    const r = capacity({
      ...base,
      teams: 200_000,
      teamsActiveShare: 0.5,
      spendsPerSecond: 20_000,
      hotTeamShare: 0.001,
    });
    expect(r.hotObjectRequestsPerSecond).toBeCloseTo(20, 9);
    expect(r.designs.current.breaksFirst.id).toBe("d1-busy-current");
    expect(r.designs.current.breaksFirst.ratio).toBeGreaterThan(19);
    expect(r.designs.queue.breaksFirst.id).toBe("queue-messages");
    expect(r.designs.queue.breaksFirst.ratio).toBeCloseTo(r.designs.queue.queueMessagesPerSecond / 5000, 9);
    expect(r.designs.queue.d1BusyMsPerSecond).toBeLessThan(1000); // the fan-in's D1 has headroom
  });

  it("what breaks first: the hottest object when one team takes everything", () => {
    const r = capacity({ ...base, teams: 10, teamsActiveShare: 1, spendsPerSecond: 2000, hotTeamShare: 1 });
    for (const design of [r.designs.current, r.designs.queue]) {
      expect(design.breaksFirst.id).toBe("object-writes-low");
      expect(design.breaksFirst.ratio).toBe(10); // 2,000 against 200
    }
    // Storage is crossed too (by far more), but a rate over its limit breaks at once.
    expect(r.limits.find((l) => l.id === "object-storage")?.ratio).toBeGreaterThan(10);
  });

  it("what breaks first with no rate crossed: the storage that fills soonest", () => {
    // Hot object: 100 × 1,500 bytes/s; D1: 200 × 500 bytes/s. Both over 10 GB within 12 months.
    const r = capacity(base);
    expect(r.limits.filter((l) => l.kind === "rate").every((l) => l.ratio < 1)).toBe(true);
    expect(r.designs.current.breaksFirst.id).toBe("object-storage");
    expect(r.designs.current.breaksFirst.ratio).toBeCloseTo((100 * 1500 * 2_592_000 * 12) / 10e9, 6);
  });

  it("every published figure names its page or says it is unconfirmed", () => {
    for (const [key, fig] of Object.entries(PLATFORM)) {
      if (fig.confirmed) expect(fig.source, key).toContain("https://developers.cloudflare.com/");
      else expect(fig.note, key).toBeTruthy();
    }
  });
});
