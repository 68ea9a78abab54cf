/**
 * The chain's definition pinned down: known answers for the canonical form and the hash, computed
 * independently (node's crypto, and crypto.subtle here), and the streaming verifier on its own.
 */
import { describe, expect, it } from "vitest";
import { type ChainFields, ChainVerifier, canonicalEntry, chainHash, GENESIS_HASH } from "../../src/domain/chain";
import { assertInvariants, createTeam, grant, newTeamId } from "../support";

const first: ChainFields = {
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

const second: ChainFields = {
  teamId: "acme",
  seq: 2,
  id: "ent_00000000000000000000000000000002",
  createdAtMs: 1767225601000,
  type: "spend",
  direction: "out",
  amountCredits: 30,
  balanceAfterCredits: 70,
  grantId: "grt_00000000000000000000000000000001",
  holdId: null,
  spendId: "spd_00000000000000000000000000000001",
  feature: "email_finder",
  quantity: 3,
  dimensions: '{"campaign":"spring-launch","é":"ü"}',
  reference: "order #1 — ✓",
  actor: "user:42",
  memberTeamId: null,
  tier: null,
  unitCredits: null,
  priceVersion: null,
  shortfallCredits: null,
  chainVersion: 1,
};

/*
 * The constants below were computed outside the project with node's own crypto:
 *   const { createHash } = require("node:crypto");
 *   const c1 = JSON.stringify(["acme",1,"ent_00000000000000000000000000000001",1767225600000,"grant","in",
 *     100,100,"grt_00000000000000000000000000000001",null,null,null,null,null,null,null]);
 *   const h1 = createHash("sha256").update("0".repeat(64) + c1, "utf8").digest("hex");
 *   const c2 = JSON.stringify(["acme",2,"ent_00000000000000000000000000000002",1767225601000,"spend","out",
 *     30,70,"grt_00000000000000000000000000000001",null,"spd_00000000000000000000000000000001",
 *     "email_finder",3,'{"campaign":"spring-launch","é":"ü"}',"order #1 — ✓","user:42"]);
 *   const h2 = createHash("sha256").update(h1 + c2, "utf8").digest("hex");
 */
const CANONICAL_1 =
  '["acme",1,"ent_00000000000000000000000000000001",1767225600000,"grant","in",100,100,"grt_00000000000000000000000000000001",null,null,null,null,null,null,null]';
const HASH_1 = "6a841abdfe6ec2047f23d04cbc768d51944b0b58891342bb1052b867ba05ddc2";
const CANONICAL_2 =
  '["acme",2,"ent_00000000000000000000000000000002",1767225601000,"spend","out",30,70,"grt_00000000000000000000000000000001",null,"spd_00000000000000000000000000000001","email_finder",3,"{\\"campaign\\":\\"spring-launch\\",\\"é\\":\\"ü\\"}","order #1 — ✓","user:42"]';
const HASH_2 = "e712729f31f758f09de35c8954faaaa37eb805e42d195271939b88e9fc08a4bf";

async function subtleHex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

describe("the chain's definition", () => {
  it("canonical form and hash match known answers (node crypto) and crypto.subtle", async () => {
    expect(GENESIS_HASH).toBe("0".repeat(64));
    expect(canonicalEntry(first)).toBe(CANONICAL_1);
    expect(canonicalEntry(second)).toBe(CANONICAL_2);
    expect(chainHash(GENESIS_HASH, first)).toBe(HASH_1);
    expect(chainHash(HASH_1, second)).toBe(HASH_2);
    expect(await subtleHex(GENESIS_HASH + CANONICAL_1)).toBe(HASH_1);
    expect(await subtleHex(HASH_1 + CANONICAL_2)).toBe(HASH_2);

    // Every field is committed to: changing any one changes the hash.
    const variants: Partial<ChainFields>[] = [
      { teamId: "acme2" },
      { seq: 3 },
      { id: "ent_x" },
      { createdAtMs: 1767225601001 },
      { type: "refund" },
      { direction: "in" },
      { amountCredits: 31 },
      { balanceAfterCredits: 69 },
      { grantId: null },
      { holdId: "hld_1" },
      { spendId: null },
      { feature: "other" },
      { quantity: null },
      { dimensions: '{"campaign":"spring-launch"}' },
      { reference: null },
      { actor: "user:43" },
    ];
    const seen = new Set([HASH_2]);
    for (const v of variants) seen.add(chainHash(HASH_1, { ...second, ...v }));
    expect(seen.size, "each field changes the hash").toBe(variants.length + 1);
    // null and the string "null" are different.
    expect(chainHash(HASH_1, { ...second, actor: "null" })).not.toBe(chainHash(HASH_1, { ...second, actor: null }));

    // The known answers are about pure functions, but every test ends on a real team's invariants.
    const teamId = newTeamId("chain-kat");
    await createTeam(teamId);
    await grant(teamId, 5);
    await assertInvariants(teamId);
  });

  it("the verifier finds the first break: a changed entry, a changed hash, a gap, a NULL hash", async () => {
    const chain = [
      { ...first, hash: HASH_1 },
      { ...second, hash: HASH_2 },
    ];
    const intact = new ChainVerifier();
    for (const e of chain) expect(intact.push(e)).toBe(true);
    expect(intact.checked).toBe(2);
    expect(intact.firstBreak).toBeNull();
    expect(intact.last).toEqual({ seq: 2, hash: HASH_2 });

    const edited = new ChainVerifier();
    edited.push({ ...first, hash: HASH_1 });
    expect(edited.push({ ...second, amountCredits: 3000, hash: HASH_2 })).toBe(false);
    expect(edited.firstBreak).toEqual({
      seq: 2,
      reason: "hash_mismatch",
      expected: chainHash(HASH_1, { ...second, amountCredits: 3000 }),
      found: HASH_2,
    });
    expect(edited.checked).toBe(1);

    const badHash = new ChainVerifier();
    expect(badHash.push({ ...first, hash: "f".repeat(64) })).toBe(false);
    expect(badHash.firstBreak).toEqual({ seq: 1, reason: "hash_mismatch", expected: HASH_1, found: "f".repeat(64) });
    // Later entries are ignored once broken.
    expect(badHash.push({ ...second, hash: HASH_2 })).toBe(false);
    expect(badHash.checked).toBe(0);

    const gap = new ChainVerifier();
    expect(gap.push({ ...second, hash: HASH_2 })).toBe(false);
    expect(gap.firstBreak).toEqual({ seq: 1, reason: "missing_entry", expected: null, found: null });

    const noHash = new ChainVerifier();
    expect(noHash.push({ ...first, hash: null })).toBe(false);
    expect(noHash.firstBreak).toEqual({ seq: 1, reason: "missing_hash", expected: HASH_1, found: null });

    const resumed = new ChainVerifier({ seq: 1, hash: HASH_1 });
    expect(resumed.push({ ...second, hash: HASH_2 })).toBe(true);
    expect(resumed.checked).toBe(1);

    const teamId = newTeamId("chain-verifier");
    await createTeam(teamId);
    await assertInvariants(teamId);
  });
});

/*
 * Version 2, computed outside the project the same way:
 *   const c1 = JSON.stringify([2,"acme",1,"ent_00000000000000000000000000000001",1767225600000,"grant","in",100,100,
 *     "grt_00000000000000000000000000000001",null,null,null,null,null,null,null,null]);
 *   const h1 = createHash("sha256").update("0".repeat(64) + c1, "utf8").digest("hex");
 *   const c2 = JSON.stringify([2,"acme",2,"ent_00000000000000000000000000000002",1767225601000,"capture","none",30,
 *     100,"grt_00000000000000000000000000000001","hld_00000000000000000000000000000001",null,"render",null,null,
 *     "job 7","user:42","sub-1"]);
 *   const h2 = createHash("sha256").update(h1 + c2, "utf8").digest("hex");
 */
const V2_HASH_1 = "4ce022d5d545b3061881b372368466b04f571cdee39c0825fd1b8ed44baac921";
const V2_HASH_2 = "ae64bbee8bbce68ff85e82628d6b04394e7b825a9fbfacaf081f22e9baac194d";

describe("the chain's definition, version 2", () => {
  const grantV2: ChainFields = { ...first, chainVersion: 2 };
  const captureV2: ChainFields = {
    teamId: "acme",
    seq: 2,
    id: "ent_00000000000000000000000000000002",
    createdAtMs: 1767225601000,
    type: "capture",
    direction: "none",
    amountCredits: 30,
    balanceAfterCredits: 100,
    grantId: "grt_00000000000000000000000000000001",
    holdId: "hld_00000000000000000000000000000001",
    spendId: null,
    feature: "render",
    quantity: null,
    dimensions: null,
    reference: "job 7",
    actor: "user:42",
    tier: null,
    unitCredits: null,
    priceVersion: null,
    shortfallCredits: null,
    memberTeamId: "sub-1",
    chainVersion: 2,
  };

  it("canonical form and hash match known answers, and a v1 capture stored as none still verifies", async () => {
    expect(canonicalEntry(grantV2)).toBe(
      '[2,"acme",1,"ent_00000000000000000000000000000001",1767225600000,"grant","in",100,100,"grt_00000000000000000000000000000001",null,null,null,null,null,null,null,null]',
    );
    expect(chainHash(GENESIS_HASH, grantV2)).toBe(V2_HASH_1);
    expect(chainHash(V2_HASH_1, captureV2)).toBe(V2_HASH_2);
    // memberTeamId is committed to in version 2.
    expect(chainHash(V2_HASH_1, { ...captureV2, memberTeamId: null })).not.toBe(V2_HASH_2);

    // A version-1 capture was hashed with direction "out"; stored as "none" now, it verifies the same.
    const v1Capture: ChainFields = { ...captureV2, chainVersion: 1, memberTeamId: null };
    const hashedAsOut = chainHash(HASH_1, v1Capture);
    expect(chainHash(HASH_1, { ...v1Capture, direction: "none" })).toBe(hashedAsOut);
    // A chain that goes on in version 2 after version-1 entries verifies as one chain.
    const mixed = new ChainVerifier();
    expect(mixed.push({ ...first, hash: HASH_1 })).toBe(true);
    expect(mixed.push({ ...v1Capture, direction: "none", hash: hashedAsOut })).toBe(true);
    const third = { ...grantV2, seq: 3, id: "ent_3" };
    expect(mixed.push({ ...third, hash: chainHash(hashedAsOut, third) })).toBe(true);
    // Claiming the other version breaks the link.
    expect(new ChainVerifier().push({ ...grantV2, hash: HASH_1 })).toBe(false);

    const teamId = newTeamId("chain-v2");
    await createTeam(teamId);
    await assertInvariants(teamId);
  });
});
