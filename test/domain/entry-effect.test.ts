/**
 * What an entry does to the balance (src/domain/entry-effect.ts): every kind of entry the ledger
 * writes, then properties over random histories. The SQL forms of the same rule are checked
 * against entryEffect inside SQLite by test/ledger/entry-effect-sql.test.ts.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Effect, entryEffect } from "../../src/domain/entry-effect";
import { DIRECTIONS, ENTRY_TYPES } from "../../src/domain/vocabulary";

type EffectInput = Parameters<typeof entryEffect>[0];
const e = (type: string, direction: string, amountCredits: number, holdId: string | null = null): EffectInput => ({
  type,
  direction,
  amountCredits,
  holdId,
});

describe("entryEffect for every entry the ledger writes", () => {
  const cases: [string, EffectInput, Effect][] = [
    ["a grant adds to available", e("grant", "in", 100), { available: 100, held: 0 }],
    ["a spend takes from available", e("spend", "out", 30), { available: -30, held: 0 }],
    ["a hold moves credits from available to held", e("hold", "out", 40, "hld"), { available: -40, held: 40 }],
    [
      "a capture spends held credits, available unchanged",
      e("capture", "none", 25, "hld"),
      { available: 0, held: -25 },
    ],
    ["a release gives held credits back to available", e("release", "in", 15, "hld"), { available: 15, held: -15 }],
    ["an expired hold gives held credits back", e("expire", "in", 15, "hld"), { available: 15, held: -15 }],
    ["an expired grant takes what it had left", e("expire", "out", 60), { available: -60, held: 0 }],
    ["a voided grant takes what it had left", e("void", "out", 60), { available: -60, held: 0 }],
    // A hold returns credits to a grant that ended meanwhile: they come back (in, with the hold)
    // and leave at once (out, with the hold): the out entry does not touch held.
    ["credits returned to an expired grant leave again", e("expire", "out", 15, "hld"), { available: -15, held: 0 }],
    ["credits returned to a voided grant leave again", e("void", "out", 15, "hld"), { available: -15, held: 0 }],
  ];
  it.each(cases)("%s", (_name, input, expected) => {
    expect(entryEffect(input)).toEqual(expected);
  });

  it("a hold returning credits to an ended grant: net, held goes down and available is unchanged", () => {
    const pair = [e("release", "in", 15, "hld"), e("void", "out", 15, "hld")].map(entryEffect);
    expect(pair.reduce((s, x) => ({ available: s.available + x.available, held: s.held + x.held }))).toEqual({
      available: 0,
      held: -15,
    });
  });

  it("a zero-credit entry moves nothing", () => {
    for (const type of ENTRY_TYPES)
      for (const direction of DIRECTIONS) {
        const effect = entryEffect(e(type, direction, 0, "hld"));
        expect(effect.available === 0 && effect.held === 0, `${type} ${direction}`).toBe(true);
      }
  });
});

const anyEntry: fc.Arbitrary<EffectInput> = fc.record({
  type: fc.constantFrom(...ENTRY_TYPES),
  direction: fc.constantFrom(...DIRECTIONS),
  amountCredits: fc.integer({ min: 0, max: 1_000_000_000_000 }),
  holdId: fc.option(fc.constantFrom("hld_1", "hld_2"), { nil: null }),
});

const sumOf = (xs: number[]) => xs.reduce((s, x) => s + x, 0);

describe("entryEffect over random sequences", () => {
  it("Σ available = Σ in − Σ out, and Σ held = Σ hold − Σ capture − Σ in-with-a-hold", () => {
    fc.assert(
      fc.property(fc.array(anyEntry, { maxLength: 50 }), (entries) => {
        const effects = entries.map(entryEffect);
        const amounts = (p: (x: EffectInput) => boolean) => sumOf(entries.filter(p).map((x) => x.amountCredits));
        expect(sumOf(effects.map((x) => x.available))).toBe(
          amounts((x) => x.direction === "in") - amounts((x) => x.direction === "out"),
        );
        expect(sumOf(effects.map((x) => x.held))).toBe(
          amounts((x) => x.type === "hold") -
            amounts((x) => x.type === "capture") -
            amounts((x) => x.type !== "hold" && x.type !== "capture" && x.direction === "in" && x.holdId !== null),
        );
      }),
      { numRuns: 500 },
    );
  });

  /*
   * A small model of a team: grants, spends, and holds that are captured (in part), released or
   * expire, each written as the entries the ledger writes for it. The sums of the entries' effects
   * must be the model's own available and held after every step.
   */
  type Op =
    | { op: "grant"; amount: number }
    | { op: "spend"; amount: number }
    | { op: "hold"; amount: number }
    | { op: "capture"; pick: number; part: number }
    | { op: "release"; pick: number }
    | { op: "expireHold"; pick: number }
    | { op: "expireGrant"; amount: number };
  const ops: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ op: fc.constant("grant" as const), amount: fc.integer({ min: 1, max: 100 }) }),
    fc.record({ op: fc.constant("spend" as const), amount: fc.integer({ min: 1, max: 100 }) }),
    fc.record({ op: fc.constant("hold" as const), amount: fc.integer({ min: 1, max: 100 }) }),
    fc.record({
      op: fc.constant("capture" as const),
      pick: fc.nat(),
      part: fc.double({ min: 0, max: 1, noNaN: true }),
    }),
    fc.record({ op: fc.constant("release" as const), pick: fc.nat() }),
    fc.record({ op: fc.constant("expireHold" as const), pick: fc.nat() }),
    fc.record({ op: fc.constant("expireGrant" as const), amount: fc.integer({ min: 1, max: 100 }) }),
  );

  it("the sums of a history's effects are the team's available and held after every step", () => {
    fc.assert(
      fc.property(fc.array(ops, { maxLength: 40 }), (steps) => {
        let available = 0;
        let held = 0;
        const pending: { id: string; amount: number }[] = [];
        const history: EffectInput[] = [];
        let holds = 0;
        const takePending = (pick: number) => pending.splice(pick % pending.length, 1)[0];
        for (const s of steps) {
          if (s.op === "grant") {
            history.push(e("grant", "in", s.amount));
            available += s.amount;
          } else if (s.op === "spend" && s.amount <= available) {
            history.push(e("spend", "out", s.amount));
            available -= s.amount;
          } else if (s.op === "expireGrant" && s.amount <= available) {
            history.push(e("expire", "out", s.amount));
            available -= s.amount;
          } else if (s.op === "hold" && s.amount <= available) {
            holds += 1;
            const id = `hld_${holds}`;
            history.push(e("hold", "out", s.amount, id));
            pending.push({ id, amount: s.amount });
            available -= s.amount;
            held += s.amount;
          } else if (s.op === "capture" && pending.length > 0) {
            const h = takePending(s.pick);
            if (!h) continue;
            const captured = Math.floor(h.amount * s.part);
            if (captured > 0) history.push(e("capture", "none", captured, h.id));
            if (h.amount - captured > 0) history.push(e("release", "in", h.amount - captured, h.id));
            held -= h.amount;
            available += h.amount - captured;
          } else if ((s.op === "release" || s.op === "expireHold") && pending.length > 0) {
            const h = takePending(s.pick);
            if (!h) continue;
            history.push(e(s.op === "release" ? "release" : "expire", "in", h.amount, h.id));
            held -= h.amount;
            available += h.amount;
          }
          const effects = history.map(entryEffect);
          expect(sumOf(effects.map((x) => x.available))).toBe(available);
          expect(sumOf(effects.map((x) => x.held))).toBe(held);
        }
      }),
      { numRuns: 300 },
    );
  });
});
