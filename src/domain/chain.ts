/**
 * The team's hash chain: every entry carries `hash`, which commits to the entry and, through the
 * previous entry's hash, to the whole history before it. Pure and synchronous, so the writer
 * (the team object's entry store) and the verifier (routes/verify.ts over D1) share this one
 * module: the team object hashes inside its transactionSync, where crypto.subtle's promises cannot
 * be awaited, so it uses node:crypto's createHash, the runtime's native SHA-256 (nodejs_compat).
 *
 *   hash(entry) = lowercase hex of SHA-256( UTF-8( previousHash + canonical(entry) ) )
 *
 * where previousHash is the hash of the entry with seq - 1 (64 hex characters), and for the team's
 * first entry (seq 1) it is GENESIS_HASH, 64 times "0". Each entry records which canonical form
 * its hash uses (`chain_version`, itself part of the version-2 form).
 *
 * Version 4 (every entry written since buying credits: refunds record their shortfall):
 *
 *   canonical(entry) = JSON.stringify([4, teamId, ...entry.ts chainedFields(4)])
 *     = [4, teamId, seq, id, createdAtMs, type, direction, amountCredits, balanceAfterCredits,
 *        grantId, holdId, spendId, feature, quantity, dimensions, reference, actor, memberTeamId,
 *        tier, unitCredits, priceVersion, shortfallCredits]
 *
 * Version 3 (entries written from the price book to buying credits; frozen):
 *
 *   canonical(entry) = JSON.stringify([3, teamId, ...entry.ts chainedFields(3)])
 *     = [3, teamId, seq, id, createdAtMs, type, direction, amountCredits, balanceAfterCredits,
 *        grantId, holdId, spendId, feature, quantity, dimensions, reference, actor, memberTeamId,
 *        tier, unitCredits, priceVersion]
 *
 *   Every frozen version hashes a later version's field that is not NULL by appending it, in
 *   column order: an old row that names one no longer verifies (tampering shows).
 *
 * Version 2 (entries written from the history adding up line by line to the price book; frozen):
 *
 *   canonical(entry) = JSON.stringify([2, teamId, ...entry.ts chainedFields(2)])
 *     = [2, teamId, seq, id, createdAtMs, type, direction, amountCredits, balanceAfterCredits,
 *        grantId, holdId, spendId, feature, quantity, dimensions, reference, actor, memberTeamId]
 *
 *   Version 2 had no tier, unit price or price version (those columns are NULL on its rows): a
 *   v2 row that names one is hashed with those values appended, and so no longer verifies.
 *
 * Version 1 (entries written before; frozen):
 *
 *   canonical(entry) = JSON.stringify([teamId, seq, id, createdAtMs, type, direction', amount,
 *       balanceAfter, grantId, holdId, spendId, feature, quantity, dimensions, reference, actor])
 *
 *   where direction' is "out" for a capture stored as "none", else the stored direction: version
 *   1 wrote captures as "out" (while leaving them out of every sum). The upgrade to object schema
 *   v3 and D1 migration 0003 store those captures as "none", as every capture is now; their
 *   hashes still verify because version 1's canonical form restores the "out" they were hashed
 *   with. Version 1 had no member team: a v1 row that names one is hashed with it appended, and
 *   so no longer verifies. Nothing else of an entry changed.
 *
 * In both: a JSON array with no whitespace (JSON.stringify's own output); seq, createdAtMs,
 * amounts, unitCredits and priceVersion are integers written as JSON numbers, quantity a JSON
 * number (whole, or with at most 6 decimals for metered units), the others strings; dimensions is
 * the stored JSON text (a string, hashed as text); an absent optional field is JSON null. Strings
 * are well-formed Unicode (the routes refuse lone surrogates and NUL), so what is hashed is what
 * SQLite stores and returns.
 *
 * Entries are numbered 1, 2, 3, … without gaps; a missing seq, a NULL hash or a hash that differs
 * from the recomputed one is a break.
 *
 * Known answers (test/chain/canonical.test.ts, computed independently with node:crypto): the v1
 * entry ["acme",1,"ent_00000000000000000000000000000001",1767225600000,"grant","in",100,100,
 *    "grt_00000000000000000000000000000001",null,null,null,null,null,null,null]
 * (that exact text is its canonical form) hashes, after GENESIS_HASH, to
 *   6a841abdfe6ec2047f23d04cbc768d51944b0b58891342bb1052b867ba05ddc2.
 */
import { createHash } from "node:crypto";
import { assert } from "./assert";
import { chainedFields, type EntryFields } from "./entry";

/** The previous hash of a team's first entry. */
export const GENESIS_HASH = "0".repeat(64);

/** What the chain commits to: every field of an entry except its hash. */
export type ChainFields = Omit<EntryFields, "hash">;

/** The chain version new entries are written with. */
export const CHAIN_VERSION = 4;
type FormVersion = 2 | 3 | 4;
const FIELDS: Record<FormVersion, ReturnType<typeof chainedFields>> = {
  2: chainedFields(2),
  3: chainedFields(3),
  4: chainedFields(4),
};
/** Per version, the fields later versions added (appended when not NULL, see the header). */
const LATER: Record<FormVersion, ReturnType<typeof chainedFields>> = {
  2: FIELDS[4].filter((f) => !FIELDS[2].includes(f)),
  3: FIELDS[4].filter((f) => !FIELDS[3].includes(f)),
  4: [],
};

/** The canonical tuple of an entry, by its own chain version. */
export function canonicalTuple(f: ChainFields): (string | number | null)[] {
  if (f.chainVersion === 1) {
    return [
      f.teamId,
      f.seq,
      f.id,
      f.createdAtMs,
      f.type,
      // Exactly the migration's rewrite, reversed: any other direction on a v1 capture breaks.
      f.type === "capture" && f.direction === "none" ? "out" : f.direction,
      f.amountCredits,
      f.balanceAfterCredits,
      f.grantId,
      f.holdId,
      f.spendId,
      f.feature,
      f.quantity,
      f.dimensions,
      f.reference,
      f.actor,
      // Version 1 had no member team: a v1 row that names one is hashed with it, and so breaks.
      ...(f.memberTeamId === null ? [] : [f.memberTeamId]),
      ...LATER[2].flatMap((field) => (f[field] === null ? [] : [f[field]])),
    ];
  }
  const version = f.chainVersion;
  assert(version === 2 || version === 3 || version === 4, "an entry's chain version is 1, 2, 3 or 4");
  const tuple: (string | number | null)[] = [version, f.teamId];
  for (const field of FIELDS[version]) tuple.push(f[field]);
  // An older version had none of the later fields: a row that names one is hashed with it, and so breaks.
  for (const field of LATER[version]) if (f[field] !== null) tuple.push(f[field]);
  return tuple;
}

export function canonicalEntry(f: ChainFields): string {
  return JSON.stringify(canonicalTuple(f));
}

/** hash(entry) given the previous entry's hash (GENESIS_HASH for seq 1). */
export function chainHash(previousHash: string, f: ChainFields): string {
  // One update of the joined text: the same bytes as two updates, one string-to-bytes conversion fewer.
  return createHash("sha256")
    .update(previousHash + canonicalEntry(f), "utf8")
    .digest("hex");
}

/** Where and how a chain stops being intact. */
export interface ChainBreak {
  seq: number;
  /**
   * hash_mismatch: the stored hash is not the recomputed one (the entry or its hash was changed);
   * missing_hash: the entry has no hash; missing_entry: no entry with this seq;
   * anchor_mismatch: the chain is consistent but differs from the team object's own hash here.
   */
  reason: "hash_mismatch" | "missing_hash" | "missing_entry" | "anchor_mismatch";
  /** The recomputed (or, for anchor_mismatch, the object's) hash; null for a missing entry. */
  expected: string | null;
  /** The stored hash; null when there is none. */
  found: string | null;
}

/**
 * Checks a chain fed one entry at a time, in seq order, keeping only the last hash: the caller
 * streams pages and nothing else is held. Stops at the first break.
 */
export class ChainVerifier {
  private prevHash: string;
  private nextSeq: number;
  /** Entries that linked correctly. */
  checked = 0;
  firstBreak: ChainBreak | null = null;

  /** Starts after `from` (seq 0 and GENESIS_HASH for the team's first entry). */
  constructor(from: { seq: number; hash: string } = { seq: 0, hash: GENESIS_HASH }) {
    this.prevHash = from.hash;
    this.nextSeq = from.seq + 1;
  }

  /** The last entry that linked correctly (seq 0 and GENESIS_HASH before any). */
  get last(): { seq: number; hash: string } {
    return { seq: this.nextSeq - 1, hash: this.prevHash };
  }

  /** Feeds the next entry; false once the chain is broken (further entries are ignored). */
  push(entry: ChainFields & { hash: string | null }): boolean {
    if (this.firstBreak) return false;
    if (entry.seq !== this.nextSeq) {
      this.firstBreak = { seq: this.nextSeq, reason: "missing_entry", expected: null, found: null };
      return false;
    }
    // A version this module does not define cannot link (a tampered row, not a fault of ours).
    if (entry.chainVersion < 1 || entry.chainVersion > CHAIN_VERSION || !Number.isInteger(entry.chainVersion)) {
      this.firstBreak = { seq: entry.seq, reason: "hash_mismatch", expected: null, found: entry.hash };
      return false;
    }
    const expected = chainHash(this.prevHash, entry);
    if (entry.hash !== expected) {
      this.firstBreak = {
        seq: entry.seq,
        reason: entry.hash === null ? "missing_hash" : "hash_mismatch",
        expected,
        found: entry.hash,
      };
      return false;
    }
    this.prevHash = expected;
    this.nextSeq += 1;
    this.checked += 1;
    return true;
  }

  /** Records a break the caller found outside the entries themselves (a missing tail, an anchor). */
  fail(b: ChainBreak): void {
    if (!this.firstBreak) this.firstBreak = b;
  }
}
