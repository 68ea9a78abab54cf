/**
 * The hash chain (src/domain/chain.ts) on its own: the known answer of version 1, version 1's
 * captures, version 2's canonical form, that every field is committed to, and the verifier.
 */
import { createHash } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  CHAIN_VERSION,
  type ChainFields,
  ChainVerifier,
  canonicalEntry,
  canonicalTuple,
  chainHash,
  GENESIS_HASH,
} from "../../src/domain/chain";
import { chainedFields, type EntryFields } from "../../src/domain/entry";
import { entryFields } from "./arbitraries";

/** The known answer of chain.ts's header (and test/chain/canonical.test.ts). */
const FIRST_V1: ChainFields = {
  teamId: "acme",
  seq: 1,
  id: "ent_00000000000000000000000000000001",
  createdAtMs: 1767225600000,
  type: "grant",
  direction: "in",
  amountCredits: 100,
  balanceAfterCredits: 100,
  grantId: "grt_00000000000000000000000000000001",
  holdId: null,
  spendId: null,
  feature: null,
  quantity: null,
  dimensions: null,
  reference: null,
  actor: null,
  memberTeamId: null,
  tier: null,
  unitCredits: null,
  priceVersion: null,
  shortfallCredits: null,
  chainVersion: 1,
};
const CANONICAL_1 =
  '["acme",1,"ent_00000000000000000000000000000001",1767225600000,"grant","in",100,100,"grt_00000000000000000000000000000001",null,null,null,null,null,null,null]';
const HASH_1 = "6a841abdfe6ec2047f23d04cbc768d51944b0b58891342bb1052b867ba05ddc2";

const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");
const withoutHash = (f: EntryFields): ChainFields => {
  const { hash: _hash, ...rest } = f;
  return rest;
};

describe("version 1 (frozen)", () => {
  it("has the known canonical form and hash", () => {
    expect(canonicalEntry(FIRST_V1)).toBe(CANONICAL_1);
    expect(chainHash(GENESIS_HASH, FIRST_V1)).toBe(HASH_1);
    expect(sha256(GENESIS_HASH + CANONICAL_1)).toBe(HASH_1);
  });

  it("hashes a capture stored with direction none as the out it was written with", () => {
    const capture: ChainFields = {
      ...FIRST_V1,
      seq: 2,
      type: "capture",
      direction: "none",
      holdId: "hld_1",
      amountCredits: 10,
    };
    expect(canonicalTuple(capture)[5]).toBe("out");
    expect(chainHash(HASH_1, capture)).toBe(chainHash(HASH_1, { ...capture, direction: "out" }));
    // Only captures: another entry's direction is hashed as stored.
    const spend = { ...capture, type: "spend" };
    expect(chainHash(HASH_1, spend)).not.toBe(chainHash(HASH_1, { ...spend, direction: "out" }));
    // Only "none" is read back as "out": any other direction on a v1 capture is hashed as stored.
    expect(chainHash(HASH_1, { ...capture, direction: "in" })).not.toBe(chainHash(HASH_1, capture));
  });

  it("a v1 entry that names a member team does not verify (version 1 never had one)", () => {
    const withMember: ChainFields = { ...FIRST_V1, memberTeamId: "sub-1" };
    expect(chainHash(GENESIS_HASH, withMember)).not.toBe(HASH_1);
    const v = new ChainVerifier();
    expect(v.push({ ...withMember, hash: HASH_1 })).toBe(false);
    expect(v.firstBreak).toMatchObject({ seq: 1, reason: "hash_mismatch" });
  });

  it("a v1 entry that names a price does not verify (version 1 never had one)", () => {
    for (const extra of [{ tier: "fast" }, { unitCredits: 4 }, { priceVersion: 7 }]) {
      expect(chainHash(GENESIS_HASH, { ...FIRST_V1, ...extra })).not.toBe(HASH_1);
    }
  });

  it("an entry of a chain version nobody wrote is a break, not a fault", () => {
    const v = new ChainVerifier();
    expect(v.push({ ...FIRST_V1, chainVersion: 5, hash: HASH_1 })).toBe(false);
    expect(v.firstBreak).toEqual({ seq: 1, reason: "hash_mismatch", expected: null, found: HASH_1 });
  });
});

const V2_FIELDS = [
  "seq",
  "id",
  "createdAtMs",
  "type",
  "direction",
  "amountCredits",
  "balanceAfterCredits",
  "grantId",
  "holdId",
  "spendId",
  "feature",
  "quantity",
  "dimensions",
  "reference",
  "actor",
  "memberTeamId",
];

describe("version 2 (frozen)", () => {
  it("chains the header's list of fields, in order", () => {
    expect(chainedFields(2)).toEqual(V2_FIELDS);
  });

  it("starts with 2 and the team id, then version 2's fields in order; a capture keeps none", () => {
    fc.assert(
      fc.property(entryFields, (e) => {
        const full = {
          ...e,
          chainVersion: 2,
          tier: null,
          unitCredits: null,
          priceVersion: null,
          shortfallCredits: null,
        };
        const f = withoutHash(full);
        const canonical = canonicalEntry(f);
        expect(JSON.parse(canonical)).toEqual([2, f.teamId, ...chainedFields(2).map((k) => full[k])]);
        expect(chainHash(GENESIS_HASH, f)).toBe(sha256(GENESIS_HASH + canonical));
      }),
      { numRuns: 300 },
    );
    const capture: ChainFields = { ...FIRST_V1, chainVersion: 2, type: "capture", direction: "none" };
    expect(canonicalTuple(capture)[6]).toBe("none");
  });

  it("a v2 entry that names a price does not verify (version 2 never had one)", () => {
    const v2: ChainFields = { ...FIRST_V1, chainVersion: 2 };
    const h = chainHash(GENESIS_HASH, v2);
    for (const extra of [{ tier: "fast" }, { unitCredits: 4 }, { priceVersion: 7 }, { shortfallCredits: 3 }]) {
      expect(chainHash(GENESIS_HASH, { ...v2, ...extra })).not.toBe(h);
    }
  });
});

describe("version 3 (frozen)", () => {
  it("chains version 2's fields, then the tier, unit price and price version", () => {
    expect(chainedFields(3)).toEqual([...V2_FIELDS, "tier", "unitCredits", "priceVersion"]);
  });

  it("starts with 3 and the team id, then version 3's fields in order", () => {
    fc.assert(
      fc.property(entryFields, (e) => {
        const full = { ...e, chainVersion: 3, shortfallCredits: null };
        const f = withoutHash(full);
        const canonical = canonicalEntry(f);
        expect(JSON.parse(canonical)).toEqual([3, f.teamId, ...chainedFields(3).map((k) => full[k])]);
        expect(chainHash(GENESIS_HASH, f)).toBe(sha256(GENESIS_HASH + canonical));
      }),
      { numRuns: 300 },
    );
  });

  it("a v3 entry that names a shortfall does not verify (version 3 never had one)", () => {
    const v3: ChainFields = { ...FIRST_V1, chainVersion: 3 };
    expect(chainHash(GENESIS_HASH, { ...v3, shortfallCredits: 0 })).not.toBe(chainHash(GENESIS_HASH, v3));
  });
});

describe("version 4", () => {
  it("is the current version", () => {
    expect(CHAIN_VERSION).toBe(4);
  });

  it("chains version 3's fields, then the shortfall", () => {
    expect(chainedFields(4)).toEqual([...V2_FIELDS, "tier", "unitCredits", "priceVersion", "shortfallCredits"]);
  });

  it("starts with 4 and the team id, then version 4's fields in order", () => {
    fc.assert(
      fc.property(entryFields, (e) => {
        const full = { ...e, chainVersion: 4 };
        const f = withoutHash(full);
        const canonical = canonicalEntry(f);
        expect(JSON.parse(canonical)).toEqual([4, f.teamId, ...chainedFields(4).map((k) => full[k])]);
        expect(chainHash(GENESIS_HASH, f)).toBe(sha256(GENESIS_HASH + canonical));
      }),
      { numRuns: 300 },
    );
  });

  it("refuses an unknown chain version", () => {
    expect(() => canonicalEntry({ ...FIRST_V1, chainVersion: 5 })).toThrow(/invariant violated/);
  });
});
