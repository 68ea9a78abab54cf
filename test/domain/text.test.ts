/**
 * Storable text (src/domain/text.ts): well-formed Unicode without NUL, because that is what
 * survives the storage round trip (UTF-8) unchanged, so what is hashed is what is stored.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isStorableText } from "../../src/domain/text";

const roundTrip = (s: string) => new TextDecoder().decode(new TextEncoder().encode(s));

describe("isStorableText", () => {
  it.each([
    ["a lone high surrogate inside text", "x\ud800y"],
    ["a lone low surrogate", "\udc00"],
    ["a lone high surrogate at the end", "abc\ud800"],
    ["a low surrogate before a high one", "\udc00\ud800"],
    ["a NUL", "a\u0000b"],
    ["only NUL", "\u0000"],
  ])("refuses %s", (_name, s) => {
    expect(isStorableText(s)).toBe(false);
  });

  it.each([
    ["the empty string", ""],
    ["plain text", "order #1"],
    ["accents and symbols", "é ü — ✓ €"],
    ["emoji (surrogate pairs)", "🎉👩‍👩‍👧"],
    ["a surrogate pair at the end", "credits 😀"],
    ["other control characters", "\u0001\t\n\r\u001f\u007f"],
    ["a noncharacter", "\uffff\ufffe"],
  ])("accepts %s", (_name, s) => {
    expect(isStorableText(s)).toBe(true);
  });

  it("accepts any well-formed string without NUL", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", maxLength: 40 }), (s) => {
        expect(isStorableText(s)).toBe(!s.includes("\u0000"));
      }),
      { numRuns: 1000 },
    );
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 40 }), (s) => {
        expect(isStorableText(s)).toBe(!s.includes("\u0000"));
      }),
      { numRuns: 1000 },
    );
  });

  // Code units, lone surrogates among them: any mix, including halves that happen to pair up.
  const codeUnits = fc.string({
    unit: fc.oneof(
      fc.string({ unit: "binary", minLength: 1, maxLength: 1 }),
      fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)),
      fc.constantFrom("\u0000", "a"),
    ),
    maxLength: 20,
  });

  it("accepts exactly the strings the UTF-8 round trip keeps, minus those with NUL", () => {
    fc.assert(
      fc.property(codeUnits, (s) => {
        if (isStorableText(s)) expect(roundTrip(s)).toBe(s);
        expect(isStorableText(s)).toBe(roundTrip(s) === s && !s.includes("\u0000"));
      }),
      { numRuns: 3000 },
    );
  });

  it("refuses every string with a lone surrogate, which the round trip does not keep", () => {
    const withLone = fc
      .tuple(
        fc.string({ unit: "grapheme", maxLength: 10 }),
        fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)),
        fc.string({ unit: "grapheme", maxLength: 10 }),
      )
      .map(([a, lone, b]) => a + lone + b)
      // A high half before a low one (or after a high one) would pair up: not lone.
      .filter((s) => roundTrip(s) !== s);
    fc.assert(
      fc.property(withLone, (s) => {
        expect(isStorableText(s)).toBe(false);
        expect(roundTrip(s)).toContain("\ufffd");
      }),
      { numRuns: 1000 },
    );
    for (const s of ["x\ud800y", "\udc00", "\ud800"]) expect(roundTrip(s)).not.toBe(s);
  });
});
