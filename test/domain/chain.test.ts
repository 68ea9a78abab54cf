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
import { CHAINED_FIELDS, type EntryFields } from "../../src/domain/entry";
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

  it("an entry of a chain version nobody wrote is a break, not a fault", () => {
    const v = new ChainVerifier();
    expect(v.push({ ...FIRST_V1, chainVersion: 3, hash: HASH_1 })).toBe(false);
    expect(v.firstBreak).toEqual({ seq: 1, reason: "hash_mismatch", expected: null, found: HASH_1 });
  });
});

describe("version 2", () => {
  it("is the current version", () => {
    expect(CHAIN_VERSION).toBe(2);
  });

  it("chains the header's list of fields, in order", () => {
    expect(CHAINED_FIELDS).toEqual([
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
    ]);
  });

  it("starts with 2 and the team id, then the CHAINED_FIELDS in order; a capture keeps none", () => {
    fc.assert(
      fc.property(entryFields, (e) => {
        const full = { ...e, chainVersion: 2 };
        const f = withoutHash(full);
        const canonical = canonicalEntry(f);
        expect(JSON.parse(canonical)).toEqual([2, f.teamId, ...CHAINED_FIELDS.map((k) => full[k])]);
        expect(chainHash(GENESIS_HASH, f)).toBe(sha256(GENESIS_HASH + canonical));
      }),
      { numRuns: 300 },
    );
    const capture: ChainFields = { ...FIRST_V1, chainVersion: 2, type: "capture", direction: "none" };
    expect(canonicalTuple(capture)[6]).toBe("none");
  });

  it("refuses an unknown chain version", () => {
    expect(() => canonicalEntry({ ...FIRST_V1, chainVersion: 3 })).toThrow(/invariant violated/);
  });
});

type Field = keyof ChainFields;
const V1_FIELDS: Field[] = [
  "teamId",
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
];
const V2_FIELDS: Field[] = ["teamId", ...CHAINED_FIELDS];

/** `f` with `field` set to another value of the field's type. */
function changed(f: ChainFields, field: Field, salt: number): ChainFields {
  const v = f[field];
  let next: string | number | null;
  if (typeof v === "number") next = v + 1 + salt;
  else if (typeof v === "string") next = `${v}x`;
  else next = field === "quantity" ? salt : `set-${salt}`;
  return { ...f, [field]: next };
}

describe("every chained field is committed to", () => {
  it("changing any one field of a version-2 entry changes its hash", () => {
    fc.assert(
      fc.property(entryFields, fc.constantFrom(...V2_FIELDS), fc.nat(1000), hexArb(), (e, field, salt, prev) => {
        const f = { ...withoutHash(e), chainVersion: 2 };
        expect(chainHash(prev, changed(f, field, salt))).not.toBe(chainHash(prev, f));
      }),
      { numRuns: 1000 },
    );
  });

  it("changing any one field of a version-1 entry changes its hash (but a capture's none/out)", () => {
    fc.assert(
      fc.property(entryFields, fc.constantFrom(...V1_FIELDS), fc.nat(1000), hexArb(), (e, field, salt, prev) => {
        const f = { ...withoutHash(e), chainVersion: 1, type: e.type === "capture" ? "spend" : e.type };
        expect(chainHash(prev, changed(f, field, salt))).not.toBe(chainHash(prev, f));
      }),
      { numRuns: 1000 },
    );
  });

  it("changing the previous hash changes the hash", () => {
    fc.assert(
      fc.property(entryFields, hexArb(), hexArb(), (e, a, b) => {
        fc.pre(a !== b);
        const f = withoutHash(e);
        expect(chainHash(a, f)).not.toBe(chainHash(b, f));
      }),
    );
  });
});

function hexArb() {
  return fc.string({ unit: fc.constantFrom(..."0123456789abcdef"), minLength: 64, maxLength: 64 });
}

/** A valid chain: version-1 entries, then version-2 ones, each hashed after the one before. */
function chain(v1: number, v2: number, teamId = "acme"): (ChainFields & { hash: string | null })[] {
  const out: (ChainFields & { hash: string | null })[] = [];
  let prev = GENESIS_HASH;
  for (let seq = 1; seq <= v1 + v2; seq++) {
    const f: ChainFields = {
      ...FIRST_V1,
      teamId,
      seq,
      id: seq === 1 ? FIRST_V1.id : `ent_${seq}`,
      createdAtMs: FIRST_V1.createdAtMs + seq - 1,
      type: seq % 3 === 0 ? "capture" : "grant",
      direction: seq % 3 === 0 ? "none" : "in",
      balanceAfterCredits: 100 + seq - 1,
      chainVersion: seq <= v1 ? 1 : 2,
      memberTeamId: seq <= v1 ? null : "sub-1",
    };
    const hash = chainHash(prev, f);
    out.push({ ...f, hash });
    prev = hash;
  }
  return out;
}

describe("ChainVerifier", () => {
  it("accepts a chain of version-1 entries followed by version-2 ones", () => {
    const entries = chain(4, 4);
    const v = new ChainVerifier();
    for (const e of entries) expect(v.push(e)).toBe(true);
    expect(v.firstBreak).toBeNull();
    expect(v.checked).toBe(8);
    expect(v.last).toEqual({ seq: 8, hash: entries[7]?.hash });
    expect(entries[0]?.hash).toBe(HASH_1);
  });

  it("continues from an anchor", () => {
    const entries = chain(2, 3);
    const anchor = entries[1];
    if (!anchor?.hash) throw new Error("no anchor");
    const v = new ChainVerifier({ seq: 2, hash: anchor.hash });
    for (const e of entries.slice(2)) expect(v.push(e)).toBe(true);
    expect(v.checked).toBe(3);
  });

  it("detects a gap", () => {
    const entries = chain(2, 3);
    const v = new ChainVerifier();
    const pushed = entries.filter((e) => e.seq !== 3).map((e) => v.push(e));
    expect(pushed).toEqual([true, true, false, false]);
    expect(v.firstBreak).toEqual({ seq: 3, reason: "missing_entry", expected: null, found: null });
    expect(v.checked).toBe(2);
    expect(v.last.seq).toBe(2);
  });

  it("detects a null hash", () => {
    const entries = chain(1, 3).map((e) => (e.seq === 2 ? { ...e, hash: null } : e));
    const v = new ChainVerifier();
    for (const e of entries) v.push(e);
    expect(v.firstBreak).toEqual({ seq: 2, reason: "missing_hash", expected: chain(1, 3)[1]?.hash, found: null });
  });

  it("detects a changed field, at the entry that was changed", () => {
    // Entries 1-3 are version 1 (3 a capture), 4-6 version 2 (6 a capture).
    const good = chain(3, 3);
    const target = fc.integer({ min: 1, max: 6 }).chain((seq) => {
      const e = good[seq - 1];
      const fields = e && e.chainVersion === 1 ? V1_FIELDS : V2_FIELDS;
      const committed = fields.filter((k) => k !== "seq");
      return fc.tuple(fc.constant(seq), fc.constantFrom(...committed));
    });
    fc.assert(
      fc.property(target, ([seq, field]) => {
        const entries = good.map((e) => (e.seq === seq ? { ...changed(e, field, 0), hash: e.hash } : e));
        const v = new ChainVerifier();
        for (const e of entries) v.push(e);
        expect(v.firstBreak?.seq).toBe(seq);
        expect(v.firstBreak?.reason).toBe("hash_mismatch");
        expect(v.firstBreak?.found).toBe(good[seq - 1]?.hash);
        expect(v.checked).toBe(seq - 1);
      }),
    );
  });

  it("detects a version-2 entry restated as version 1, and a tail rehashed from another chain", () => {
    const entries = chain(2, 2);
    const downgraded = entries.map((e) => (e.seq === 3 ? { ...e, chainVersion: 1 } : e));
    const v = new ChainVerifier();
    for (const e of downgraded) v.push(e);
    expect(v.firstBreak).toMatchObject({ seq: 3, reason: "hash_mismatch" });

    const other = chain(2, 2, "other");
    const spliced = [entries[0], entries[1], other[2], other[3]].flatMap((e) => (e ? [e] : []));
    const w = new ChainVerifier();
    for (const e of spliced) w.push(e);
    expect(w.firstBreak).toMatchObject({ seq: 3, reason: "hash_mismatch" });
  });

  it("keeps the first break only", () => {
    const v = new ChainVerifier();
    v.fail({ seq: 5, reason: "anchor_mismatch", expected: "a", found: "b" });
    v.fail({ seq: 6, reason: "missing_entry", expected: null, found: null });
    expect(v.firstBreak).toEqual({ seq: 5, reason: "anchor_mismatch", expected: "a", found: "b" });
    expect(v.push(chain(0, 1)[0] ?? (FIRST_V1 as ChainFields & { hash: string }))).toBe(false);
  });
});
