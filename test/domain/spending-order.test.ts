/**
 * The spending order (src/domain/spending-order.ts) on its own: the rule's keys one by one, a
 * total order on random grants, and the object's index over the same columns in the same order.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compareSpendOrder, type OrderedGrant, SPEND_ORDER_SQL } from "../../src/domain/spending-order";
import { CATEGORIES } from "../../src/domain/vocabulary";
import { migrate } from "../../src/object/schema";

const grant = (g: Partial<OrderedGrant> = {}): OrderedGrant => ({
  category: "paid",
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
const orderedGrant: fc.Arbitrary<OrderedGrant> = fc.record({
  category: fc.constantFrom(...CATEGORIES),
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
    expect(SPEND_ORDER_SQL).toBe("category_rank, priority, expires_at IS NULL, expires_at, seq");
  });

  it("names exactly the columns of grants_spend_order (object/schema.ts, as migrate runs it), in order", () => {
    const statements = schemaStatements();
    const creates = statements.filter((s) => /CREATE INDEX grants_spend_order\b/.test(s));
    expect(creates, "grants_spend_order is created once").toHaveLength(1);
    const create = creates[0] ?? "";
    const after = statements.slice(statements.indexOf(create) + 1);
    expect(
      after.filter((s) => /grants_spend_order/.test(s)),
      "and never dropped or rebuilt afterwards",
    ).toEqual([]);
    expect(create).toMatch(/ON grants \(/);
    expect(indexColumns(create)).toEqual(SPEND_ORDER_SQL.split(", "));
  });
});
