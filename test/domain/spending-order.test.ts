/**
 * The spending order (src/domain/spending-order.ts) on its own: the rule's keys one by one, a
 * total order on random grants, who may draw a feature-restricted grant, and the object's index
 * over the same columns in the same order.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { draw } from "../../src/domain/draw";
import {
  compareSpendOrder,
  DRAWABLE_BY_SQL,
  mayDraw,
  type OrderedGrant,
  SPEND_ORDER_SQL,
} from "../../src/domain/spending-order";
import { CATEGORIES } from "../../src/domain/vocabulary";
import { migrate } from "../../src/object/schema";

const grant = (g: Partial<OrderedGrant> = {}): OrderedGrant => ({
  category: "paid",
  restrictedFeature: null,
  priority: 0,
  expiresAtMs: null,
  seq: 1,
  ...g,
});

const spentBefore = (a: OrderedGrant, b: OrderedGrant) => {
  expect(compareSpendOrder(a, b), "a before b").toBeLessThan(0);
  expect(compareSpendOrder(b, a), "b after a").toBeGreaterThan(0);
};

describe("compareSpendOrder, key by key", () => {
  it("spends free before promotional before paid, whatever else differs", () => {
    spentBefore(
      grant({ category: "free", priority: 9, expiresAtMs: null, seq: 9 }),
      grant({ category: "promotional", seq: 1 }),
    );
    spentBefore(
      grant({ category: "promotional", priority: 9, seq: 9 }),
      grant({ category: "paid", expiresAtMs: 1, seq: 1 }),
    );
    spentBefore(grant({ category: "free", priority: 9, seq: 9 }), grant({ category: "paid", seq: 1 }));
  });

  it("then, within a category, feature-restricted credits before unrestricted ones, whatever else differs", () => {
    spentBefore(
      grant({ restrictedFeature: "calling", priority: 9, expiresAtMs: null, seq: 9 }),
      grant({ restrictedFeature: null, priority: 0, expiresAtMs: 1, seq: 1 }),
    );
    // The category still comes first: free unrestricted before paid restricted.
    spentBefore(
      grant({ category: "free", restrictedFeature: null, seq: 9 }),
      grant({ category: "paid", restrictedFeature: "calling", seq: 1 }),
    );
  });

  it("then lower priority first", () => {
    spentBefore(grant({ priority: 0, expiresAtMs: null, seq: 9 }), grant({ priority: 1, expiresAtMs: 1, seq: 1 }));
  });

  it("then the soonest expiry, never-expiring last", () => {
    spentBefore(grant({ expiresAtMs: 1_000, seq: 9 }), grant({ expiresAtMs: 2_000, seq: 1 }));
    spentBefore(grant({ expiresAtMs: 2_000, seq: 9 }), grant({ expiresAtMs: null, seq: 1 }));
    // 0 is a time like any other, not "no expiry".
    spentBefore(grant({ expiresAtMs: 0, seq: 9 }), grant({ expiresAtMs: null, seq: 1 }));
  });

  it("then the oldest grant", () => {
    spentBefore(grant({ seq: 1 }), grant({ seq: 2 }));
    spentBefore(grant({ expiresAtMs: 5, seq: 1 }), grant({ expiresAtMs: 5, seq: 2 }));
  });

  it("is 0 only for grants equal on every key", () => {
    expect(compareSpendOrder(grant({ expiresAtMs: 7, seq: 3 }), grant({ expiresAtMs: 7, seq: 3 }))).toBe(0);
    expect(compareSpendOrder(grant(), grant())).toBe(0);
  });
});

// An independent statement of the rule: the key tuple, compared lexicographically.
const RANK = { free: 0, promotional: 1, paid: 2 } as const;
const keyTuple = (g: OrderedGrant): number[] => [
  RANK[g.category],
  g.restrictedFeature === null ? 1 : 0,
  g.priority,
  g.expiresAtMs === null ? Number.POSITIVE_INFINITY : g.expiresAtMs,
  g.seq,
];
function referenceCompare(a: OrderedGrant, b: OrderedGrant): number {
  const ka = keyTuple(a);
  const kb = keyTuple(b);
  for (let i = 0; i < ka.length; i++) {
    const x = ka[i] ?? 0;
    const y = kb[i] ?? 0;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

// Few values per key, so that ties on the first keys are common and the later keys decide.
const FEATURES = ["calling", "email_finder", "ai_reply"] as const;
const orderedGrant: fc.Arbitrary<OrderedGrant> = fc.record({
  category: fc.constantFrom(...CATEGORIES),
  restrictedFeature: fc.option(fc.constantFrom(...FEATURES), { nil: null, freq: 2 }),
  priority: fc.integer({ min: 0, max: 3 }),
  expiresAtMs: fc.option(fc.constantFrom(0, 1_000, 2_000, 1_767_225_600_000), { nil: null }),
  seq: fc.integer({ min: 1, max: 6 }),
});

describe("compareSpendOrder is a total order consistent with the key list", () => {
  it("agrees in sign with the key tuple compared lexicographically", () => {
    fc.assert(
      fc.property(orderedGrant, orderedGrant, (a, b) => {
        expect(Math.sign(compareSpendOrder(a, b))).toBe(referenceCompare(a, b));
      }),
      { numRuns: 2000 },
    );
  });

  it("is antisymmetric and reflexive", () => {
    fc.assert(
      fc.property(orderedGrant, orderedGrant, (a, b) => {
        expect(Math.sign(compareSpendOrder(a, b))).toBe(-Math.sign(compareSpendOrder(b, a)) || 0);
        expect(compareSpendOrder(a, a)).toBe(0);
      }),
      { numRuns: 1000 },
    );
  });

  it("is transitive on random triples", () => {
    fc.assert(
      fc.property(orderedGrant, orderedGrant, orderedGrant, (a, b, c) => {
        if (compareSpendOrder(a, b) <= 0 && compareSpendOrder(b, c) <= 0) {
          expect(compareSpendOrder(a, c)).toBeLessThanOrEqual(0);
        }
        if (compareSpendOrder(a, b) < 0 && compareSpendOrder(b, c) < 0) {
          expect(compareSpendOrder(a, c)).toBeLessThan(0);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it("sorts any shuffle of distinct grants into the one reference order", () => {
    const shuffledGrants = fc
      .uniqueArray(orderedGrant, { minLength: 1, maxLength: 30, selector: (g) => keyTuple(g).join("|") })
      .chain((gs) =>
        fc.tuple(fc.constant(gs), fc.shuffledSubarray(gs, { minLength: gs.length, maxLength: gs.length })),
      );
    fc.assert(
      fc.property(shuffledGrants, ([grants, shuffled]) => {
        expect([...shuffled].sort(compareSpendOrder)).toEqual([...grants].sort(referenceCompare));
      }),
      { numRuns: 300 },
    );
  });
});

/** Every statement the object's schema runs on a fresh database, in order (read through migrate). */
function schemaStatements(): string[] {
  const statements: string[] = [];
  const fake = {
    exec(query: string) {
      statements.push(query);
      return { toArray: () => [] };
    },
  };
  migrate(fake as unknown as SqlStorage);
  return statements;
}

/** The column list of `CREATE INDEX name ON table (…)`, split at top-level commas. */
function indexColumns(statement: string): string[] {
  const open = statement.indexOf("(");
  let depth = 0;
  let close = -1;
  for (let i = open; i < statement.length; i++) {
    if (statement[i] === "(") depth++;
    if (statement[i] === ")" && --depth === 0) {
      close = i;
      break;
    }
  }
  const columns: string[] = [];
  let current = "";
  depth = 0;
  for (const ch of statement.slice(open + 1, close)) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      columns.push(current.trim());
      current = "";
    } else current += ch;
  }
  columns.push(current.trim());
  return columns.map((c) => c.replace(/\s+/g, " "));
}

describe("SPEND_ORDER_SQL and the object's index", () => {
  it("is the key list, in order", () => {
    expect(SPEND_ORDER_SQL).toBe(
      "category_rank, restricted_feature IS NULL, priority, expires_at IS NULL, expires_at, seq",
    );
  });

  it("states who may draw as one condition with the charge's feature as its one parameter", () => {
    expect(DRAWABLE_BY_SQL).toBe("(restricted_feature IS NULL OR restricted_feature = ?)");
  });

  it("names exactly the columns of grants_spend_order (object/schema.ts, as migrate runs it), in order", () => {
    const statements = schemaStatements();
    const creates = statements.filter((s) => /CREATE INDEX grants_spend_order\b/.test(s));
    // v1 created it; v5 (restricted credits) drops it and creates it with the restriction key.
    // Each rebuild follows a drop of the one before, and the last creation is what stays.
    expect(creates.length, "grants_spend_order is created").toBeGreaterThanOrEqual(1);
    const drops = statements.filter((s) => /DROP INDEX grants_spend_order\b/.test(s));
    expect(drops, "every creation after the first follows a drop").toHaveLength(creates.length - 1);
    const create = creates[creates.length - 1] ?? "";
    const after = statements.slice(statements.lastIndexOf(create) + 1);
    expect(
      after.filter((s) => /grants_spend_order/.test(s)),
      "and is never dropped or rebuilt after its last creation",
    ).toEqual([]);
    expect(create).toMatch(/ON grants \(/);
    expect(indexColumns(create)).toEqual(SPEND_ORDER_SQL.split(", "));
  });
});

describe("who may draw a feature-restricted grant (mayDraw)", () => {
  it("an unrestricted grant: any charge, with a feature or without", () => {
    expect(mayDraw(grant(), "calling")).toBe(true);
    expect(mayDraw(grant(), null)).toBe(true);
    expect(mayDraw(grant(), undefined)).toBe(true);
  });

  it("a restricted grant: only a charge for its own feature", () => {
    const calling = grant({ restrictedFeature: "calling" });
    expect(mayDraw(calling, "calling")).toBe(true);
    expect(mayDraw(calling, "email_finder")).toBe(false);
    expect(mayDraw(calling, null)).toBe(false);
    expect(mayDraw(calling, undefined)).toBe(false);
  });

  // What a charge for `feature` sees: the grants it may draw, in spending order.
  const seenBy = <G extends OrderedGrant>(grants: readonly G[], feature: string | null): G[] =>
    grants.filter((g) => mayDraw(g, feature)).sort(compareSpendOrder);

  const drawableGrant = fc
    .tuple(orderedGrant, fc.integer({ min: 1, max: 50 }))
    .map(([g, remaining]) => ({ ...g, remaining }));
  const feature = fc.option(fc.constantFrom(...FEATURES), { nil: null, freq: 4 });

  it("a charge for F draws its category's F credits before unrestricted ones, never another feature's, and keeps free before promotional before paid", () => {
    fc.assert(
      fc.property(fc.array(drawableGrant, { maxLength: 20 }), feature, (grants, f) => {
        const seen = seenBy(grants, f);
        for (const g of seen) expect(g.restrictedFeature === null || g.restrictedFeature === f).toBe(true);
        for (let i = 1; i < seen.length; i++) {
          const [a, b] = [seen[i - 1], seen[i]];
          if (!a || !b) continue;
          expect(RANK[a.category], "categories in order").toBeLessThanOrEqual(RANK[b.category]);
          if (a.category === b.category)
            expect(
              a.restrictedFeature === null && b.restrictedFeature !== null,
              "no unrestricted grant before an F grant of the same category",
            ).toBe(false);
        }
        // Everything an F charge may not see is restricted to another feature.
        for (const g of grants.filter((x) => !seen.includes(x)))
          expect(g.restrictedFeature !== null && g.restrictedFeature !== f).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });

  it("a draw for F takes only what F may draw, and a refusal's available is exactly that", () => {
    fc.assert(
      fc.property(
        fc.array(drawableGrant, { maxLength: 20 }),
        feature,
        fc.integer({ min: 1, max: 600 }),
        (generated, f, amount) => {
          const grants = generated.map((g, i) => ({ ...g, id: `g${i}` }));
          const seen = seenBy(grants, f);
          const forF = seen.reduce((s, g) => s + g.remaining, 0);
          const drawn = draw(seen, amount);
          if (amount > forF) {
            expect(drawn).toEqual({ ok: false, available: forF });
            return;
          }
          expect(drawn.ok).toBe(true);
          if (!drawn.ok) return;
          expect(drawn.allocations.reduce((s, a) => s + a.amount, 0)).toBe(amount);
          for (const a of drawn.allocations) {
            const g = grants.find((x) => x.id === a.grantId);
            expect(g && mayDraw(g, f), "never a grant restricted to another feature").toBe(true);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });
});
