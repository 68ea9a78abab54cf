/** Monthly periods (src/domain/periods.ts): clamping to short months, no gaps, the index of a time. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { periodBounds, periodIndexAt, periodStartMs } from "../../src/domain/periods";

const iso = (ms: number) => new Date(ms).toISOString();

describe("periods", () => {
  it("count calendar months from the anchor, keeping its time of day", () => {
    const anchor = Date.parse("2026-01-15T10:30:00.000Z");
    expect(iso(periodStartMs(anchor, 0))).toBe("2026-01-15T10:30:00.000Z");
    expect(iso(periodStartMs(anchor, 1))).toBe("2026-02-15T10:30:00.000Z");
    expect(iso(periodStartMs(anchor, 12))).toBe("2027-01-15T10:30:00.000Z");
  });

  it("clamp the 31st to a shorter month's last day, and come back to the 31st", () => {
    const anchor = Date.parse("2026-01-31T00:00:00.000Z");
    expect([0, 1, 2, 3, 4].map((n) => iso(periodStartMs(anchor, n)).slice(0, 10))).toEqual([
      "2026-01-31",
      "2026-02-28",
      "2026-03-31",
      "2026-04-30",
      "2026-05-31",
    ]);
    const leap = Date.parse("2028-01-31T00:00:00.000Z");
    expect(iso(periodStartMs(leap, 1)).slice(0, 10)).toBe("2028-02-29");
  });

  it("tile time: every instant is in exactly one period, which contains it", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: Date.parse("2020-01-01"), max: Date.parse("2035-01-01") }),
        fc.integer({ min: 0, max: 5 * 365 * 24 * 3600 * 1000 }),
        (anchor, offset) => {
          const at = anchor + offset;
          const n = periodIndexAt(anchor, at);
          const b = periodBounds(anchor, n);
          expect(b.startsAtMs <= at && at < b.endsAtMs).toBe(true);
          expect(periodBounds(anchor, n + 1).startsAtMs).toBe(b.endsAtMs);
          expect(b.endsAtMs - b.startsAtMs).toBeGreaterThanOrEqual(28 * 24 * 3600 * 1000);
          expect(b.endsAtMs - b.startsAtMs).toBeLessThanOrEqual(31 * 24 * 3600 * 1000);
        },
      ),
      { numRuns: 1000 },
    );
  });
});
