/**
 * SQLite's spending order is the pure order: random grants go into a fresh team object's grants
 * table through its own GrantStore, and GrantStore.drawable (ORDER BY SPEND_ORDER_SQL) returns
 * them in the order compareSpendOrder gives (src/domain/spending-order.ts); for a charge's
 * feature (WHERE DRAWABLE_BY_SQL), exactly the grants mayDraw lets it draw, in that order.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compareSpendOrder, DRAWABLE_BY_SQL, mayDraw, SPEND_ORDER_SQL } from "../../src/domain/spending-order";
import { CATEGORIES, type Category } from "../../src/domain/vocabulary";
import type { LedgerStore } from "../../src/object/store";
import type { TeamLedger } from "../../src/object/team-ledger";

const NOW = Date.UTC(2026, 0, 1);
const HOUR = 3_600_000;

interface GeneratedGrant {
  category: Category;
  restrictedFeature: string | null;
  priority: number;
  /** Hours from NOW; null never expires. Negative and 0: already expired, never drawable. */
  expiresInHours: number | null;
  amount: number;
}

// Few values per key, so that ties are common and every key of the order gets to decide.
const FEATURES = ["calling", "email_finder"] as const;
const generatedGrant: fc.Arbitrary<GeneratedGrant> = fc.record({
  category: fc.constantFrom(...CATEGORIES),
  restrictedFeature: fc.option(fc.constantFrom(...FEATURES), { nil: null, freq: 2 }),
  priority: fc.integer({ min: 0, max: 3 }),
  expiresInHours: fc.option(fc.constantFrom(-1, 0, 1, 2, 3), { nil: null, freq: 3 }),
  amount: fc.integer({ min: 1, max: 1000 }),
});

const stub = () => env.TEAM_LEDGER.get(env.TEAM_LEDGER.idFromName(`spend-order-${crypto.randomUUID()}`));
const storeOf = (instance: TeamLedger) => (instance as unknown as { store: LedgerStore }).store;

describe("the object's spending order", () => {
  it("is compareSpendOrder, for random grants with many ties", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(generatedGrant, { minLength: 1, maxLength: 25 }), async (generated) => {
        // One charge's feature per run, or none (a hold without a feature).
        const charge = generated.length % 3 === 0 ? null : generated.length % 3 === 1 ? "calling" : "email_finder";
        await runInDurableObject(stub(), (instance: TeamLedger) => {
          const grants = storeOf(instance).grants;
          const ids = generated.map((g, i) => {
            const id = `grt_${i}`;
            grants.insert({
              id,
              amount: g.amount,
              category: g.category,
              source: "manual",
              priority: g.priority,
              expiresAtMs: g.expiresInHours === null ? null : NOW + g.expiresInHours * HOUR,
              reference: null,
              createdAtMs: NOW - HOUR,
              restrictedFeature: g.restrictedFeature,
            });
            return id;
          });
          // The pure side: what the store holds (seq as SQLite assigned it), live at NOW, sorted.
          const stored = ids.map((id) => {
            const g = grants.get(id);
            if (!g) throw new Error(`grant ${id} was not stored`);
            return g;
          });
          const seqs = stored.map((g) => g.seq);
          expect(seqs, "seq grows with insertion").toEqual([...seqs].sort((a, b) => a - b));
          const expected = stored
            .filter((g) => g.expiresAtMs === null || g.expiresAtMs > NOW)
            .sort(compareSpendOrder)
            .map((g) => g.id);
          const drawn = [...grants.drawable(NOW)];
          expect(drawn.map((g) => g.id)).toEqual(expected);
          // A charge for one feature: the same order, less what it may not draw.
          const forCharge = [...grants.drawable(NOW, charge)].map((g) => g.id);
          const expectedForCharge = stored
            .filter((g) => (g.expiresAtMs === null || g.expiresAtMs > NOW) && mayDraw(g, charge))
            .sort(compareSpendOrder)
            .map((g) => g.id);
          expect(forCharge).toEqual(expectedForCharge);
          // And what it yields is what was stored.
          for (const d of drawn) {
            const g = stored.find((s) => s.id === d.id);
            expect(d).toEqual({
              id: g?.id,
              seq: g?.seq,
              category: g?.category,
              restrictedFeature: g?.restrictedFeature,
              priority: g?.priority,
              expiresAtMs: g?.expiresAtMs,
              remaining: g?.amount,
            });
          }
        });
      }),
      { numRuns: 100 },
    );
  });

  it("is read from the grants_spend_order index, without sorting", async () => {
    await runInDurableObject(stub(), (_instance: TeamLedger, state) => {
      // The queries of GrantStore.drawable: every live grant, and a spend's (only what its feature may draw).
      for (const [filter, params] of [
        ["", [NOW]],
        [` AND ${DRAWABLE_BY_SQL}`, [NOW, "calling"]],
      ] as const) {
        const plan = state.storage.sql
          .exec<{ detail: string }>(
            `EXPLAIN QUERY PLAN SELECT seq, id, remaining, category, priority, expires_at, restricted_feature FROM grants
             WHERE status = 'active' AND remaining > 0 AND (expires_at IS NULL OR expires_at > ?)${filter}
             ORDER BY ${SPEND_ORDER_SQL}`,
            ...params,
          )
          .toArray()
          .map((r) => r.detail);
        expect(plan.join("\n")).toMatch(/USING INDEX grants_spend_order/);
        expect(plan.join("\n")).not.toMatch(/TEMP B-TREE/);
      }
    });
  });
});
