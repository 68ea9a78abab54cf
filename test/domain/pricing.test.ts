/**
 * Pricing (src/domain/pricing.ts): a named amount, the price book's price × quantity, tiers, a
 * plan's override, metered quantities rounded up exactly, per-unit rounding, charge on success.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  creditsFor,
  exactQuantity,
  type Feature,
  type FeatureQuote,
  type PlanPrice,
  priceCharge,
  type Unit,
} from "../../src/domain/pricing";

const MAX = 1_000_000;

function quote(
  f: Partial<Feature> & { creditsPerUnit: number },
  planPrices: Record<string, PlanPrice> = {},
  catalogVersion = 7,
): FeatureQuote {
  return {
    feature: {
      key: "f",
      name: "F",
      unit: "request" as Unit,
      tiers: null,
      chargeOnSuccess: false,
      creditPaymentEligible: false,
      unitRounding: "ceil",
      version: 3,
      createdAt: "",
      updatedAt: "",
      ...f,
    },
    catalogVersion,
    planPrices,
  };
}

const ok = (r: ReturnType<typeof priceCharge>) => {
  if (!r.ok) throw new Error(`refused: ${r.detail}`);
  return r.charge;
};

describe("priceCharge", () => {
  it("charges the amount a request names, keeping the rest of the request", () => {
    const request = { feature: "email_finder", amount: 120, quantity: 3, reference: "r1", dimensions: { a: "b" } };
    expect(priceCharge(request, undefined, null, "spend", MAX)).toEqual({ ok: true, charge: request });
    // Even for a feature the book prices: the request's amount wins, and no price is recorded.
    expect(
      ok(priceCharge({ feature: "f", amount: 7, quantity: 2 }, quote({ creditsPerUnit: 100 }), null, "spend", MAX)),
    ).toEqual({ feature: "f", amount: 7, quantity: 2 });
  });

  it("refuses a feature the price book does not have, naming where", () => {
    const r = priceCharge({ feature: "email_finder" }, undefined, null, "spend", MAX);
    expect(r).toMatchObject({ ok: false, code: "invalid_request" });
    if (!r.ok) expect(r.detail).toContain('feature "email_finder" is not in the price book');
    const inBatch = priceCharge({ feature: "x" }, undefined, null, "spend", MAX, "items[3].feature");
    if (!inBatch.ok) expect(inBatch.detail.startsWith('items[3].feature "x"')).toBe(true);
    else throw new Error("priced an unknown feature");
  });

  it("prices credits per unit × quantity and records the unit price and the book's version", () => {
    expect(ok(priceCharge({ feature: "f", quantity: 4 }, quote({ creditsPerUnit: 25 }), null, "spend", MAX))).toEqual({
      feature: "f",
      quantity: 4,
      amount: 100,
      unitCredits: 25,
      priceVersion: 7,
    });
    expect(ok(priceCharge({ feature: "f" }, quote({ creditsPerUnit: 25 }), null, "spend", MAX)).amount).toBe(25);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: 1000 }), (perUnit, quantity) => {
        const c = ok(priceCharge({ feature: "f", quantity }, quote({ creditsPerUnit: perUnit }), null, "spend", MAX));
        expect(c.amount).toBe(perUnit * quantity);
      }),
    );
  });

  it("prices tiers at their own absolute price; an unknown tier or a tier of an untiered feature is refused", () => {
    const q = quote({ creditsPerUnit: 2, tiers: { fast: 1, balanced: 2, premium: 5 } });
    expect(ok(priceCharge({ feature: "f", tier: "premium", quantity: 3 }, q, null, "spend", MAX))).toMatchObject({
      amount: 15,
      unitCredits: 5,
      tier: "premium",
    });
    expect(ok(priceCharge({ feature: "f", quantity: 3 }, q, null, "spend", MAX)).amount).toBe(6);
    const partial = quote({ creditsPerUnit: 2, tiers: { fast: 1 } });
    const r = priceCharge({ feature: "f", tier: "premium" }, partial, null, "spend", MAX);
    expect(r).toMatchObject({ ok: false, code: "invalid_request" });
    if (!r.ok) expect(r.detail).toContain('has no tier "premium"; its tiers are fast');
    const none = priceCharge({ feature: "f", tier: "fast" }, quote({ creditsPerUnit: 2 }), null, "spend", MAX);
    if (!none.ok) expect(none.detail).toContain("has no tiers");
    else throw new Error("priced a tier of an untiered feature");
  });

  it("uses the team's plan's price when it has one, for the base price and per tier", () => {
    const q = quote(
      { creditsPerUnit: 5, tiers: { fast: 2, premium: 10 } },
      {
        pro: { creditsPerUnit: 3 },
        scale: { creditsPerUnit: 2, tiers: { premium: 6 } },
      },
    );
    const at = (planId: string | null, tier?: "fast" | "premium") =>
      ok(priceCharge({ feature: "f", quantity: 10, tier }, q, planId, "spend", MAX)).amount;
    expect(at(null)).toBe(50);
    expect(at("pro")).toBe(30);
    expect(at("scale")).toBe(20);
    expect(at("other")).toBe(50);
    // Own keys only: a plan named like an Object.prototype member has no override.
    expect(at("constructor")).toBe(50);
    expect(at("__proto__")).toBe(50);
    expect(at("pro", "premium")).toBe(100); // pro prices only the base
    expect(at("scale", "premium")).toBe(60);
    expect(at("scale", "fast")).toBe(20);
  });

  it("rounds a metered quantity up to whole credits, exactly (2.25 minutes at 4 = 9)", () => {
    const minute = quote({ creditsPerUnit: 4, unit: "minute" });
    expect(ok(priceCharge({ feature: "f", quantity: 2.25 }, minute, null, "spend", MAX)).amount).toBe(9);
    expect(ok(priceCharge({ feature: "f", quantity: 2.26 }, minute, null, "spend", MAX)).amount).toBe(10);
    expect(ok(priceCharge({ feature: "f", quantity: 0.000001 }, minute, null, "spend", MAX)).amount).toBe(1);
    // 0.1 + 0.2 is not 0.3 in floating point; in decimals it is: 3 × 0.1 minutes at 10 = 3 credits.
    expect(creditsFor(10, 0.3, "ceil")).toBe(3);
    expect(creditsFor(10, 0.1, "ceil") * 3).toBe(3);
  });

  it("per_unit rounding counts each started unit whole", () => {
    const perMinute = quote({ creditsPerUnit: 4, unit: "minute", unitRounding: "per_unit" });
    expect(ok(priceCharge({ feature: "f", quantity: 2.25 }, perMinute, null, "spend", MAX)).amount).toBe(12);
    expect(ok(priceCharge({ feature: "f", quantity: 3 }, perMinute, null, "spend", MAX)).amount).toBe(12);
  });

  it("agrees with exact rational arithmetic for every metered quantity of up to 6 decimals", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100_000 }),
        fc.integer({ min: 1, max: 10 ** 12 }),
        fc.constantFrom("ceil" as const, "per_unit" as const),
        (price, micro, rounding) => {
          const quantity = micro / 1_000_000;
          const q = exactQuantity(quantity);
          if (q === null) return; // the double has more than 6 decimals when printed: refused below
          const scale = 10n ** BigInt(q.scale);
          const expected =
            rounding === "ceil"
              ? (BigInt(price) * q.digits + scale - 1n) / scale
              : BigInt(price) * ((q.digits + scale - 1n) / scale);
          expect(BigInt(creditsFor(price, quantity, rounding))).toBe(expected);
          // And never less than the real product: rounding only goes up. Compared exactly: in
          // doubles, price × quantity near 10^11 is off by more than any fixed tolerance.
          expect(BigInt(creditsFor(price, quantity, rounding)) * scale >= BigInt(price) * q.digits).toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });

  it("refuses a fractional quantity of a counted unit, and more than 6 decimals of a metered one", () => {
    const r = priceCharge(
      { feature: "f", quantity: 1.5 },
      quote({ creditsPerUnit: 5, unit: "lead" }),
      null,
      "spend",
      MAX,
    );
    expect(r).toMatchObject({ ok: false, code: "invalid_request" });
    if (!r.ok) expect(r.detail).toContain("whole number of leads");
    const minute = quote({ creditsPerUnit: 4, unit: "minute" });
    expect(priceCharge({ feature: "f", quantity: 1.0000001 }, minute, null, "spend", MAX).ok).toBe(false);
    expect(priceCharge({ feature: "f", quantity: 0 }, minute, null, "spend", MAX).ok).toBe(false);
  });

  it("charges a charge-on-success feature only through a hold", () => {
    const verified = quote({ creditsPerUnit: 5, chargeOnSuccess: true });
    const r = priceCharge({ feature: "f" }, verified, null, "spend", MAX);
    expect(r).toMatchObject({ ok: false, code: "invalid_request" });
    if (!r.ok) expect(r.detail).toContain("create a hold and capture it");
    // Even with an explicit amount: the feature's rule, not the price, decides.
    expect(priceCharge({ feature: "f", amount: 5 }, verified, null, "spend", MAX).ok).toBe(false);
    expect(ok(priceCharge({ feature: "f" }, verified, null, "hold", MAX)).amount).toBe(5);
  });

  it("refuses a price over the maximum, naming where and the limit", () => {
    expect(priceCharge({ feature: "f", quantity: 10 }, quote({ creditsPerUnit: 100_000 }), null, "spend", MAX).ok).toBe(
      true,
    );
    const r = priceCharge(
      { feature: "f", quantity: 11 },
      quote({ creditsPerUnit: 100_000 }),
      null,
      "spend",
      MAX,
      "items[0].feature",
    );
    expect(r).toMatchObject({ ok: false, code: "invalid_request" });
    if (!r.ok) expect(r.detail).toContain('items[0].feature "f" would cost 1100000 credits');
    const huge = priceCharge(
      { feature: "f", quantity: 1e9 },
      quote({ creditsPerUnit: 2 ** 45 }),
      null,
      "spend",
      Number.MAX_VALUE,
    );
    expect(huge).toMatchObject({ ok: false, code: "invalid_request" });
  });
});
