/**
 * Drawing credits (src/domain/draw.ts): draw across grants in spending order, splitting a hold's
 * allocations for a capture, merging allocations. Examples, then properties over random grants.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Allocation, type DrawableGrant, draw, mergeAllocations, splitCapture } from "../../src/domain/draw";

const grants = (...remaining: number[]): DrawableGrant[] =>
  remaining.map((r, i) => ({
    id: `g${i + 1}`,
    remaining: r,
    category: "paid",
    restrictedFeature: null,
    priority: 0,
    expiresAtMs: null,
    seq: i + 1,
  }));

/** Yields `gs` one by one and counts how many the consumer pulled. */
function counting(gs: readonly DrawableGrant[]): { iterable: Iterable<DrawableGrant>; pulls: () => number } {
  let pulls = 0;
  function* gen(): Generator<DrawableGrant> {
    for (const g of gs) {
      pulls += 1;
      yield g;
    }
  }
  return { iterable: gen(), pulls: () => pulls };
}

const sum = (as: readonly { amount: number }[]) => as.reduce((s, a) => s + a.amount, 0);

describe("draw, by example", () => {
  it("takes the first grants first and splits the grant that completes the amount", () => {
    expect(draw(grants(5, 10, 7), 8)).toEqual({
      ok: true,
      allocations: [
        { grantId: "g1", amount: 5 },
        { grantId: "g2", amount: 3 },
      ],
    });
  });

  it("covers an amount exactly equal to what the grants hold", () => {
    expect(draw(grants(5, 10), 15)).toEqual({
      ok: true,
      allocations: [
        { grantId: "g1", amount: 5 },
        { grantId: "g2", amount: 10 },
      ],
    });
  });

  it("reports what is available when the grants do not cover the amount", () => {
    expect(draw(grants(5, 10), 16)).toEqual({ ok: false, available: 15 });
    expect(draw([], 1)).toEqual({ ok: false, available: 0 });
  });

  it("skips grants with nothing left, without an allocation for them", () => {
    expect(draw(grants(0, 4, 0, 4), 6)).toEqual({
      ok: true,
      allocations: [
        { grantId: "g2", amount: 4 },
        { grantId: "g4", amount: 2 },
      ],
    });
  });

  it("stops reading at the grant that completes the amount", () => {
    const c = counting(grants(3, 3, 3, 3, 3));
    expect(draw(c.iterable, 6).ok).toBe(true);
    expect(c.pulls()).toBe(2);
  });

  it("refuses an amount that is not a positive safe integer (a bug in the caller)", () => {
    for (const bad of [0, -1, 1.5, Number.NaN, Number.MAX_SAFE_INTEGER + 1]) {
      expect(() => draw(grants(10), bad), String(bad)).toThrow(/invariant violated/);
    }
  });
});

const remainings = fc.array(fc.integer({ min: 0, max: 20 }), { maxLength: 12 });

describe("draw, properties", () => {
  it("covers exactly, first grants first, reading no grant past the one that completes it; or reports the total", () => {
    fc.assert(
      fc.property(remainings, fc.integer({ min: 1, max: 150 }), (rs, amount) => {
        const gs = grants(...rs);
        const c = counting(gs);
        const result = draw(c.iterable, amount);
        const total = sum(gs.map((g) => ({ amount: g.remaining })));
        if (total < amount) {
          expect(result).toEqual({ ok: false, available: total });
          expect(c.pulls(), "every grant was read before giving up").toBe(gs.length);
          return;
        }
        if (!result.ok) throw new Error(`expected a draw of ${amount} from ${total} credits to succeed`);
        const allocations = result.allocations;
        expect(sum(allocations)).toBe(amount);
        // The first grants with credits, in order, each taken whole but the last.
        const withCredits = gs.filter((g) => g.remaining > 0);
        const touched = withCredits.slice(0, allocations.length);
        expect(allocations.map((a) => a.grantId)).toEqual(touched.map((g) => g.id));
        allocations.forEach((a, i) => {
          const g = touched[i];
          if (!g) throw new Error("allocation without a grant");
          expect(a.amount).toBeGreaterThan(0);
          if (i < allocations.length - 1) expect(a.amount).toBe(g.remaining);
          else expect(a.amount).toBeLessThanOrEqual(g.remaining);
        });
        // The grant that completed the amount was the last one read.
        const last = touched[touched.length - 1];
        expect(c.pulls()).toBe(last ? gs.indexOf(last) + 1 : 0);
      }),
      { numRuns: 1000 },
    );
  });
});

/** Allocations of a hold: distinct grants, each at least 1 credit. */
const allocationsArb: fc.Arbitrary<Allocation[]> = fc
  .array(fc.integer({ min: 1, max: 50 }), { minLength: 1, maxLength: 8 })
  .map((amounts) => amounts.map((amount, i) => ({ grantId: `g${i + 1}`, amount })));

const holdAndCapture = allocationsArb.chain((as) => fc.tuple(fc.constant(as), fc.integer({ min: 0, max: sum(as) })));

describe("splitCapture", () => {
  it("captures from the first allocations, returns the rest to the grants it came from", () => {
    const as = [
      { grantId: "a", amount: 5 },
      { grantId: "b", amount: 5 },
      { grantId: "c", amount: 5 },
    ];
    expect(splitCapture(as, 7)).toEqual({
      captured: [
        { grantId: "a", amount: 5 },
        { grantId: "b", amount: 2 },
      ],
      returned: [
        { grantId: "b", amount: 3 },
        { grantId: "c", amount: 5 },
      ],
    });
    expect(splitCapture(as, 0)).toEqual({ captured: [], returned: as });
    expect(splitCapture(as, 15)).toEqual({ captured: as, returned: [] });
  });

  it("refuses a capture outside the hold", () => {
    expect(() => splitCapture([{ grantId: "a", amount: 5 }], 6)).toThrow(/invariant violated/);
    expect(() => splitCapture([{ grantId: "a", amount: 5 }], -1)).toThrow(/invariant violated/);
  });

  it("captured + returned = the allocations, captured = the amount, captured from the first allocations", () => {
    fc.assert(
      fc.property(holdAndCapture, ([as, capture]) => {
        const { captured, returned } = splitCapture(as, capture);
        expect(sum(captured)).toBe(capture);
        expect(sum(returned)).toBe(sum(as) - capture);
        // Per grant, what was captured and what came back add up to what the hold took.
        expect(mergeAllocations(captured, returned)).toEqual(as);
        for (const a of [...captured, ...returned]) expect(a.amount).toBeGreaterThan(0);
        // Captured: a prefix of the allocations, whole but the last.
        captured.forEach((c, i) => {
          const a = as[i];
          if (!a) throw new Error("captured more allocations than the hold has");
          expect(c.grantId).toBe(a.grantId);
          if (i < captured.length - 1) expect(c.amount).toBe(a.amount);
        });
        // Returned: a suffix of the allocations, whole but (perhaps) the first.
        const offset = as.length - returned.length;
        returned.forEach((r, i) => {
          const a = as[offset + i];
          if (!a) throw new Error("returned more allocations than the hold has");
          expect(r.grantId).toBe(a.grantId);
          if (i > 0) expect(r.amount).toBe(a.amount);
        });
        // At most one allocation is split between the two.
        expect(captured.length + returned.length - as.length).toBeLessThanOrEqual(1);
      }),
      { numRuns: 1000 },
    );
  });
});

describe("mergeAllocations", () => {
  it("adds allocations of the same grant, in first-seen order", () => {
    expect(
      mergeAllocations(
        [
          { grantId: "b", amount: 1 },
          { grantId: "a", amount: 2 },
        ],
        [
          { grantId: "c", amount: 3 },
          { grantId: "b", amount: 4 },
        ],
      ),
    ).toEqual([
      { grantId: "b", amount: 5 },
      { grantId: "a", amount: 2 },
      { grantId: "c", amount: 3 },
    ]);
    expect(mergeAllocations([], [])).toEqual([]);
  });

  it("keeps every grant's total and lists each grant once, in first-seen order", () => {
    const loose = fc.array(
      fc.record({ grantId: fc.constantFrom("a", "b", "c", "d"), amount: fc.integer({ min: 1, max: 100 }) }),
      { maxLength: 10 },
    );
    fc.assert(
      fc.property(loose, loose, (a, b) => {
        const merged = mergeAllocations(a, b);
        const all = [...a, ...b];
        expect(merged.map((m) => m.grantId)).toEqual([...new Set(all.map((x) => x.grantId))]);
        for (const m of merged) {
          expect(m.amount).toBe(sum(all.filter((x) => x.grantId === m.grantId)));
        }
        expect(sum(merged)).toBe(sum(all));
      }),
    );
  });
});
