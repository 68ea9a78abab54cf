/** fast-check arbitraries of the domain's values, shared by the tests in test/domain. */
import fc from "fast-check";
import type { EntryFields } from "../../src/domain/entry";
import { DIRECTIONS, ENTRY_TYPES, TIERS } from "../../src/domain/vocabulary";

/** Well-formed text, as the routes accept it (no lone surrogates; NUL is refused separately). */
export const text = (maxLength = 12) =>
  fc.string({ unit: "grapheme", minLength: 1, maxLength }).filter((s) => !s.includes("\u0000"));

const nullable = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: null });

/** Dimensions as they are stored: the JSON text of an object of strings. */
export const dimensionsText = fc
  .dictionary(text(8), fc.string({ unit: "grapheme", maxLength: 8 }), { maxKeys: 3 })
  .map((d) => JSON.stringify(d));

export const hex64 = fc.string({ unit: fc.constantFrom(..."0123456789abcdef"), minLength: 64, maxLength: 64 });

/** Any stored entry's fields (not necessarily a consistent history). */
export const entryFields: fc.Arbitrary<EntryFields> = fc.record({
  teamId: text(16),
  seq: fc.integer({ min: 1, max: 1_000_000_000 }),
  id: text(20),
  createdAtMs: fc.integer({ min: 0, max: 4_102_444_800_000 }),
  type: fc.constantFrom(...ENTRY_TYPES),
  direction: fc.constantFrom(...DIRECTIONS),
  amountCredits: fc.integer({ min: 0, max: 1_000_000_000_000 }),
  balanceAfterCredits: fc.integer({ min: 0, max: 1_000_000_000_000_000 }),
  grantId: nullable(text()),
  holdId: nullable(text()),
  spendId: nullable(text()),
  feature: nullable(text()),
  quantity: nullable(
    fc.oneof(
      fc.integer({ min: 1, max: 1_000_000_000 }),
      fc.integer({ min: 1, max: 1_000_000_000_000 }).map((micro) => micro / 1_000_000),
    ),
  ),
  dimensions: nullable(dimensionsText),
  reference: nullable(text()),
  actor: nullable(text()),
  memberTeamId: nullable(text()),
  tier: nullable(fc.constantFrom(...TIERS)),
  unitCredits: nullable(fc.integer({ min: 1, max: 1_000_000_000 })),
  priceVersion: nullable(fc.integer({ min: 1, max: 1_000_000_000 })),
  shortfallCredits: nullable(fc.integer({ min: 0, max: 1_000_000_000 })),
  chainVersion: fc.constantFrom(1, 2, 3),
  hash: nullable(hex64),
});
