/** Pricing (src/domain/pricing.ts): a named amount, the empty price book, a catalog's price. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Catalog, EMPTY_CATALOG, priceCharge } from "../../src/domain/pricing";

const MAX = 1_000_000;
const catalog = (features: Record<string, number>): Catalog => ({
  version: 1,
  features: new Map(Object.entries(features).map(([name, creditsPerUnit]) => [name, { creditsPerUnit }])),
});

describe("priceCharge", () => {
  it("charges the amount a request names, keeping the rest of the request", () => {
    const request = { feature: "email_finder", amount: 120, quantity: 3, reference: "r1", dimensions: { a: "b" } };
    expect(priceCharge(request, EMPTY_CATALOG, MAX)).toEqual({ ok: true, charge: request });
    // Even for a feature the catalog prices: the request's amount wins.
    expect(priceCharge({ feature: "f", amount: 7, quantity: 2 }, catalog({ f: 100 }), MAX)).toEqual({
      ok: true,
      charge: { feature: "f", amount: 7, quantity: 2 },
    });
  });

  it("refuses a feature the (empty) price book does not have, naming where", () => {
    const r = priceCharge({ feature: "email_finder" }, EMPTY_CATALOG, MAX);
    expect(r).toMatchObject({ ok: false, code: "invalid_request" });
    if (r.ok) return;
    expect(r.detail).toContain('feature "email_finder" is not in the price book');
    expect(r.detail).toContain('"amount"');
    const inBatch = priceCharge({ feature: "x" }, catalog({ y: 1 }), MAX, "items[3].feature");
    expect(inBatch.ok).toBe(false);
    if (!inBatch.ok) expect(inBatch.detail.startsWith('items[3].feature "x"')).toBe(true);
  });

  it("prices a catalog feature at credits per unit × quantity (quantity 1 when absent)", () => {
    expect(priceCharge({ feature: "f", quantity: 4 }, catalog({ f: 25 }), MAX)).toEqual({
      ok: true,
      charge: { feature: "f", quantity: 4, amount: 100 },
    });
    expect(priceCharge({ feature: "f" }, catalog({ f: 25 }), MAX)).toEqual({
      ok: true,
      charge: { feature: "f", amount: 25 },
    });
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: 1000 }), (perUnit, quantity) => {
        const r = priceCharge({ feature: "f", quantity }, catalog({ f: perUnit }), MAX);
        expect(r).toEqual({ ok: true, charge: { feature: "f", quantity, amount: perUnit * quantity } });
      }),
    );
  });

  it("refuses a price over the maximum, naming where and the limit", () => {
    expect(priceCharge({ feature: "f", quantity: 10 }, catalog({ f: 100_000 }), MAX).ok).toBe(true);
    const r = priceCharge({ feature: "f", quantity: 11 }, catalog({ f: 100_000 }), MAX, "items[0].feature");
    expect(r).toMatchObject({ ok: false, code: "invalid_request" });
    if (!r.ok) expect(r.detail).toBe('items[0].feature "f" would cost 1100000 credits; at most 1000000');
  });

  it("refuses a price that is not a safe integer, or below one credit", () => {
    const huge = priceCharge({ feature: "f", quantity: 1_000_000_000 }, catalog({ f: 2 ** 45 }), Number.MAX_VALUE);
    expect(huge).toMatchObject({ ok: false, code: "invalid_request" });
    expect(priceCharge({ feature: "f", quantity: 3 }, catalog({ f: 0.5 }), MAX)).toMatchObject({ ok: false });
    expect(priceCharge({ feature: "f" }, catalog({ f: 0 }), MAX)).toMatchObject({ ok: false });
    expect(priceCharge({ feature: "f", quantity: 0 }, catalog({ f: 5 }), MAX)).toMatchObject({ ok: false });
  });
});
