/**
 * For the hash-chain tests: the verify route, a history with every kind of entry, the object's
 * own chain recomputed row by row, and tampering with D1's replica.
 */

import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { type ChainBreak, ChainVerifier } from "../../src/domain/chain";
import { type EntryFields, fieldsOfRow } from "../../src/domain/entry";
import { call, expectStatus, newKey } from "./calls";
import { makeGrantDue, makeHoldDue, objectRows } from "./object";
import { createHold, createTeam, grant, holdAction, inAnHour, spend, voidGrant } from "./operations";

export interface Verification {
  ok: boolean;
  checked: number;
  firstBreak: ChainBreak | null;
  lastCheckedSeq: number;
  headSeq: number;
  replicatedSeq: number;
  unreplicated: number;
  nextCursor: string | null;
}

export async function verify(teamId: string, query = ""): Promise<Verification> {
  const res = await call<Verification>(`/v1/teams/${teamId}/entries/verify${query ? `?${query}` : ""}`);
  expectStatus(res, 200);
  return res.body;
}

/**
 * One of every operation that writes entries: grant, spend, batch, hold + capture (partial),
 * hold + release, hold expiry, grant expiry, void. Returns the number of entries written.
 */
export async function everyKindOfOperation(teamId: string, round = 0): Promise<void> {
  const { grant: g } = await grant(teamId, 1_000);
  const { grant: expiring } = await grant(teamId, 50, {
    category: "free",
    source: "allocation",
    expiresAt: inAnHour(),
  });
  expectStatus(
    await spend(teamId, 7, newKey(), { dimensions: { campaign: `c${round}`, region: "eu" }, reference: `r${round}` }),
    201,
  );
  const batch = await call(`/v1/teams/${teamId}/spends/batch`, {
    body: {
      mode: "until_insufficient",
      items: [
        { feature: "a", amount: 3 },
        { feature: "b", amount: 4, quantity: 2 },
        { feature: "c", amount: 5, dimensions: { k: "v" } },
      ],
    },
    idempotencyKey: newKey(),
  });
  expectStatus(batch, 200);
  const { hold: captured } = await createHold(teamId, 20);
  expectStatus(await holdAction(teamId, captured.id, "capture", { amount: 12 }), 200);
  const { hold: released } = await createHold(teamId, 9);
  expectStatus(await holdAction(teamId, released.id, "release", { reason: "not needed" }), 200);
  const { hold: lapsed } = await createHold(teamId, 6);
  await makeHoldDue(teamId, lapsed.id);
  await makeGrantDue(teamId, expiring.id);
  // A read settles what is due: the hold's and the grant's expiry entries.
  expectStatus(await call(`/v1/teams/${teamId}/balance`), 200);
  expectStatus(await voidGrant(teamId, g.id), 200);
}

export async function newTeamWithEveryKind(teamId: string): Promise<void> {
  await createTeam(teamId);
  await everyKindOfOperation(teamId);
}

/** A row of the object's entries table: every column, with the two the chain tests key on typed. */
export type ObjectEntryRow = { [k: string]: SqlStorageValue; seq: number; hash: string | null };

export function objectChainRows(teamId: string): Promise<ObjectEntryRow[]> {
  return objectRows<ObjectEntryRow>(teamId, "SELECT * FROM entries ORDER BY seq");
}

/** An object row as the chain sees it (the same mapping the service uses). */
export const fieldsOf = (teamId: string, row: ObjectEntryRow): EntryFields => fieldsOfRow(teamId, row);

/** Recomputes the chain over the object's own entries; every stored hash must be the recomputed one. */
export async function expectObjectChainIntact(teamId: string): Promise<ObjectEntryRow[]> {
  const rows = await objectChainRows(teamId);
  const verifier = new ChainVerifier();
  for (const r of rows) verifier.push(fieldsOf(teamId, r));
  expect(verifier.firstBreak, "the object's chain is intact").toBeNull();
  expect(verifier.checked).toBe(rows.length);
  return rows;
}

/** Runs a statement against the replicated history in D1. */
export async function d1Run(query: string, ...args: (string | number | null)[]): Promise<number> {
  const res = await env.DB.prepare(query)
    .bind(...args)
    .run();
  return res.meta.changes;
}

export async function d1Hashes(teamId: string): Promise<{ seq: number; hash: string | null }[]> {
  const res = await env.DB.prepare("SELECT seq, hash FROM ledger_entries WHERE team_id = ? ORDER BY seq")
    .bind(teamId)
    .all<{ seq: number; hash: string | null }>();
  return res.results;
}
