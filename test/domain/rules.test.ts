/** The pure rules of drawing and ordering (src/domain), in plain Node: no runtime needed. */
import { describe, expect, it } from "vitest";
import { type Allocation, type DrawableGrant, draw, mergeAllocations, splitCapture } from "../../src/domain/draw";
import { compareSpendOrder } from "../../src/domain/spending-order";

let seqCounter = 0;
function g(over: Partial<DrawableGrant> & { id: string }): DrawableGrant {
  seqCounter += 1;
  return {
    category: "paid",
    restrictedFeature: null,
    priority: 0,
    expiresAtMs: null,
    seq: seqCounter,
    remaining: 10,
    ...over,
  };
}

/** A generator over `grants` that counts how many items the consumer pulled. */
function counted(grants: DrawableGrant[]): { iter: Iterable<DrawableGrant>; pulled: () => number } {
  let n = 0;
  function* gen(): Generator<DrawableGrant> {
    for (const x of grants) {
      n += 1;
      yield x;
    }
  }
  return { iter: gen(), pulled: () => n };
}

describe("compareSpendOrder", () => {
  it("orders free before promotional before paid, whatever else differs", () => {
    const paid = g({ id: "paid", category: "paid", priority: 0, expiresAtMs: 1, seq: 1 });
    const promo = g({ id: "promo", category: "promotional", priority: 9, expiresAtMs: null, seq: 2 });
    const free = g({ id: "free", category: "free", priority: 99, expiresAtMs: null, seq: 3 });
    expect([paid, promo, free].sort(compareSpendOrder).map((x) => x.id)).toEqual(["free", "promo", "paid"]);
    expect(compareSpendOrder(free, paid)).toBeLessThan(0);
    expect(compareSpendOrder(paid, free)).toBeGreaterThan(0);
  });

  it("within a category: lower priority first", () => {
    const a = g({ id: "p5", priority: 5, expiresAtMs: 1, seq: 1 });
    const b = g({ id: "p1", priority: 1, expiresAtMs: null, seq: 2 });
    expect([a, b].sort(compareSpendOrder).map((x) => x.id)).toEqual(["p1", "p5"]);
  });

  it("same priority: soonest expiry first, never-expiring last", () => {
    const never = g({ id: "never", expiresAtMs: null, seq: 1 });
    const late = g({ id: "late", expiresAtMs: 2_000, seq: 2 });
    const soon = g({ id: "soon", expiresAtMs: 1_000, seq: 3 });
    expect([never, late, soon].sort(compareSpendOrder).map((x) => x.id)).toEqual(["soon", "late", "never"]);
  });

  it("then oldest (lowest seq) first, also between two never-expiring grants", () => {
    const newer = g({ id: "newer", seq: 20 });
    const older = g({ id: "older", seq: 10 });
    expect([newer, older].sort(compareSpendOrder).map((x) => x.id)).toEqual(["older", "newer"]);
    // Infinity - Infinity is NaN: the tie on expiry must fall through to seq, not break the sort.
    expect(compareSpendOrder(older, newer)).toBeLessThan(0);
    expect(compareSpendOrder(newer, older)).toBeGreaterThan(0);
    const eA = g({ id: "eA", expiresAtMs: 5, seq: 1 });
    const eB = g({ id: "eB", expiresAtMs: 5, seq: 2 });
    expect(compareSpendOrder(eA, eB)).toBeLessThan(0);
  });

  it("is zero only for the same position", () => {
    const a = g({ id: "a", seq: 7 });
    expect(compareSpendOrder(a, { ...a })).toBe(0);
  });

  it("sorts a shuffled mix into the documented order", () => {
    const expected = [
      g({ id: "free-p0-soon", category: "free", priority: 0, expiresAtMs: 100 }),
      g({ id: "free-p0-never-old", category: "free", priority: 0, expiresAtMs: null }),
      g({ id: "free-p0-never-new", category: "free", priority: 0, expiresAtMs: null }),
      g({ id: "free-p1", category: "free", priority: 1, expiresAtMs: 50 }),
      g({ id: "promo-p0", category: "promotional", priority: 0 }),
      g({ id: "paid-p0-soon", category: "paid", priority: 0, expiresAtMs: 10 }),
      g({ id: "paid-p0-late", category: "paid", priority: 0, expiresAtMs: 20 }),
      g({ id: "paid-p3", category: "paid", priority: 3, expiresAtMs: 1 }),
    ];
    const shuffled = [expected[5], expected[2], expected[7], expected[0], expected[4], expected[6], expected[1]];
    shuffled.push(expected[3]);
    const sorted = shuffled.filter((x): x is DrawableGrant => x !== undefined).sort(compareSpendOrder);
    expect(sorted.map((x) => x.id)).toEqual(expected.map((x) => x.id));
  });
});

describe("draw", () => {
  it("covers the amount exactly, first grant first, one allocation per grant touched", () => {
    const r = draw([g({ id: "a", remaining: 5 }), g({ id: "b", remaining: 10 }), g({ id: "c", remaining: 10 })], 12);
    expect(r).toEqual({
      ok: true,
      allocations: [
        { grantId: "a", amount: 5 },
        { grantId: "b", amount: 7 },
      ],
    });
  });

  it("an amount equal to the first grant takes only that grant", () => {
    const r = draw([g({ id: "a", remaining: 5 }), g({ id: "b", remaining: 10 })], 5);
    expect(r).toEqual({ ok: true, allocations: [{ grantId: "a", amount: 5 }] });
  });

  it("stops reading grants as soon as the amount is covered", () => {
    const grants = [
      g({ id: "a", remaining: 3 }),
      g({ id: "b", remaining: 4 }),
      g({ id: "c", remaining: 100 }),
      g({ id: "d", remaining: 100 }),
    ];
    const exact = counted(grants);
    expect(draw(exact.iter, 7)).toEqual({
      ok: true,
      allocations: [
        { grantId: "a", amount: 3 },
        { grantId: "b", amount: 4 },
      ],
    });
    expect(exact.pulled(), "exact cover after the 2nd grant: the 3rd is never read").toBe(2);

    const partial = counted(grants);
    expect(draw(partial.iter, 8)).toEqual({
      ok: true,
      allocations: [
        { grantId: "a", amount: 3 },
        { grantId: "b", amount: 4 },
        { grantId: "c", amount: 1 },
      ],
    });
    expect(partial.pulled()).toBe(3);

    const first = counted(grants);
    draw(first.iter, 1);
    expect(first.pulled()).toBe(1);
  });

  it("skips grants with nothing remaining without allocating from them", () => {
    const r = draw([g({ id: "empty", remaining: 0 }), g({ id: "b", remaining: 4 })], 4);
    expect(r).toEqual({ ok: true, allocations: [{ grantId: "b", amount: 4 }] });
  });

  it("insufficient: returns what the grants hold, after reading all of them", () => {
    const grants = [g({ id: "a", remaining: 3 }), g({ id: "b", remaining: 4 }), g({ id: "c", remaining: 0 })];
    const c = counted(grants);
    expect(draw(c.iter, 8)).toEqual({ ok: false, available: 7 });
    expect(c.pulled()).toBe(3);
    expect(draw([], 1)).toEqual({ ok: false, available: 0 });
  });

  it("does not modify the grants it reads", () => {
    const grants = [g({ id: "a", remaining: 3 }), g({ id: "b", remaining: 4 })];
    const before = structuredClone(grants);
    draw(grants, 5);
    expect(grants).toEqual(before);
  });

  it("refuses a non-positive or unsafe amount as a broken invariant", () => {
    const grants = [g({ id: "a", remaining: 3 })];
    expect(() => draw(grants, 0)).toThrow(/invariant violated/);
    expect(() => draw(grants, -1)).toThrow(/invariant violated/);
    expect(() => draw(grants, 1.5)).toThrow(/invariant violated/);
    expect(() => draw(grants, Number.MAX_SAFE_INTEGER + 1)).toThrow(/invariant violated/);
  });
});

describe("splitCapture", () => {
  const allocations: Allocation[] = [
    { grantId: "a", amount: 5 },
    { grantId: "b", amount: 7 },
    { grantId: "c", amount: 3 },
  ];

  it("captures the grants drawn first first; returns the rest to where it came from", () => {
    expect(splitCapture(allocations, 8)).toEqual({
      captured: [
        { grantId: "a", amount: 5 },
        { grantId: "b", amount: 3 },
      ],
      returned: [
        { grantId: "b", amount: 4 },
        { grantId: "c", amount: 3 },
      ],
    });
  });

  it("capture of all returns nothing; capture of zero returns everything", () => {
    expect(splitCapture(allocations, 15)).toEqual({ captured: allocations, returned: [] });
    expect(splitCapture(allocations, 0)).toEqual({ captured: [], returned: allocations });
  });

  it("a capture ending on a grant boundary splits no grant", () => {
    expect(splitCapture(allocations, 12)).toEqual({
      captured: [
        { grantId: "a", amount: 5 },
        { grantId: "b", amount: 7 },
      ],
      returned: [{ grantId: "c", amount: 3 }],
    });
  });

  it("captured + returned = the hold, per grant, for every capture amount", () => {
    for (let amount = 0; amount <= 15; amount++) {
      const { captured, returned } = splitCapture(allocations, amount);
      expect(captured.reduce((s, a) => s + a.amount, 0)).toBe(amount);
      for (const a of allocations) {
        const c = captured.find((x) => x.grantId === a.grantId)?.amount ?? 0;
        const r = returned.find((x) => x.grantId === a.grantId)?.amount ?? 0;
        expect(c + r).toBe(a.amount);
      }
      expect([...captured, ...returned].every((x) => x.amount > 0)).toBe(true);
    }
  });

  it("refuses a capture outside the hold", () => {
    expect(() => splitCapture(allocations, 16)).toThrow(/invariant violated/);
    expect(() => splitCapture(allocations, -1)).toThrow(/invariant violated/);
  });
});

describe("mergeAllocations", () => {
  it("adds allocations of the same grant, keeping first-seen order", () => {
    const merged = mergeAllocations(
      [
        { grantId: "a", amount: 5 },
        { grantId: "b", amount: 2 },
      ],
      [
        { grantId: "c", amount: 1 },
        { grantId: "a", amount: 3 },
      ],
    );
    expect(merged).toEqual([
      { grantId: "a", amount: 8 },
      { grantId: "b", amount: 2 },
      { grantId: "c", amount: 1 },
    ]);
  });

  it("with an empty side is a copy of the other; inputs are left alone", () => {
    const a: Allocation[] = [{ grantId: "x", amount: 4 }];
    expect(mergeAllocations(a, [])).toEqual(a);
    expect(mergeAllocations([], a)).toEqual(a);
    expect(mergeAllocations(a, a)).toEqual([{ grantId: "x", amount: 8 }]);
    expect(a).toEqual([{ grantId: "x", amount: 4 }]);
  });

  it("merging then splitting keeps the total", () => {
    const merged = mergeAllocations(
      [
        { grantId: "a", amount: 5 },
        { grantId: "b", amount: 2 },
      ],
      [{ grantId: "b", amount: 3 }],
    );
    const { captured, returned } = splitCapture(merged, 6);
    expect(captured).toEqual([
      { grantId: "a", amount: 5 },
      { grantId: "b", amount: 1 },
    ]);
    expect(returned).toEqual([{ grantId: "b", amount: 4 }]);
  });
});
