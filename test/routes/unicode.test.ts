/**
 * Text that cannot be stored as sent is refused: a lone high surrogate, a lone low surrogate and
 * NUL, in every free-text field of every route, are a 400 that writes nothing. Well-formed text
 * of any script (accents, emoji with modifiers, line separators) is stored as sent and its hash
 * chain verifies, in the object and in D1.
 */
import { describe, expect, it } from "vitest";
import {
  api,
  assertInvariants,
  createHold,
  createTeam,
  drainOutbox,
  expectObjectChainIntact,
  expectProblem,
  expectStatus,
  grant,
  newKey,
  newTeamId,
  snapshot,
  verify,
} from "../support";

const BAD: readonly [string, string][] = [
  ["a lone high surrogate", "x\ud800y"],
  ["a lone high surrogate at the end", "x\udbff"],
  ["an unpaired low surrogate", "x\udc00y"],
  ["a low surrogate before its high one", "\udc00\ud800"],
  ["NUL", "x\u0000y"],
];

/** Every free-text field of every route, as a request with `text` in it. */
function requests(teamId: string, holdId: string, text: string): [string, string, Record<string, unknown>][] {
  const t = `/v1/teams/${teamId}`;
  return [
    ["PUT team name", t, { name: text }],
    ["PUT team planId", t, { planId: text }],
    ["grant reference", `${t}/grants`, { amount: 1, category: "paid", source: "manual", reference: text }],
    ["spend reference", `${t}/spends`, { feature: "f", amount: 1, reference: text }],
    ["spend dimension value", `${t}/spends`, { feature: "f", amount: 1, dimensions: { k: text } }],
    ["spend feature", `${t}/spends`, { feature: text, amount: 1 }],
    [
      "batch item reference",
      `${t}/spends/batch`,
      { mode: "all_or_nothing", items: [{ feature: "f", amount: 1, reference: text }] },
    ],
    [
      "batch item dimension value",
      `${t}/spends/batch`,
      { mode: "all_or_nothing", items: [{ feature: "f", amount: 1, dimensions: { k: text } }] },
    ],
    ["hold reference", `${t}/holds`, { amount: 1, ttlSeconds: 60, reference: text }],
    ["hold dimension value", `${t}/holds`, { amount: 1, ttlSeconds: 60, dimensions: { k: text } }],
    ["hold feature", `${t}/holds`, { amount: 1, ttlSeconds: 60, feature: text }],
    ["release reason", `${t}/holds/${holdId}/release`, { reason: text }],
  ];
}

describe("text that cannot be stored as sent", () => {
  it("is refused with 400 in every string field, and nothing is written", async () => {
    const teamId = newTeamId("unicode-bad");
    await createTeam(teamId, { name: "Acme" });
    await grant(teamId, 100);
    const { hold } = await createHold(teamId, 5);
    const before = await snapshot(teamId);
    for (const [what, text] of BAD) {
      for (const [field, path, body] of requests(teamId, hold.id, text)) {
        const put = path === `/v1/teams/${teamId}`;
        const res = await api(path, { method: put ? "PUT" : "POST", body, idempotencyKey: put ? undefined : newKey() });
        const problem = expectProblem(res, 400, "invalid_request");
        expect(problem.detail, `${field} with ${what}`).toMatch(/Unicode|NUL|features are/);
      }
    }
    expect(await snapshot(teamId)).toEqual(before);
    await assertInvariants(teamId);
  });
});

describe("well-formed text of any script", () => {
  it("is stored as sent, and the chain verifies in the object and in D1", async () => {
    const teamId = newTeamId("unicode-good");
    const texts = [
      "é ü ß",
      "👍🏽 🇪🇺 👩‍👩‍👧",
      "line\u2028separator",
      "tab\tand\nnewline",
      "\uffff\ufffd",
      "中文 العربية",
    ];
    await createTeam(teamId, { name: texts[1] });
    for (const [i, text] of texts.entries()) {
      const g = await grant(teamId, 10, { reference: text });
      expect(g.grant.reference).toBe(text);
      expect(g.entries[0]?.reference).toBe(text);
      const s = await api<{ entries: { reference?: string; dimensions?: Record<string, string> }[] }>(
        `/v1/teams/${teamId}/spends`,
        { body: { feature: `f${i}`, amount: 1, reference: text, dimensions: { k: text } }, idempotencyKey: newKey() },
      );
      expectStatus(s, 201);
      expect(s.body.entries[0]?.reference).toBe(text);
      expect(s.body.entries[0]?.dimensions).toEqual({ k: text });
    }
    await expectObjectChainIntact(teamId);
    await drainOutbox(teamId);
    const v = await verify(teamId);
    expect(v).toMatchObject({ ok: true, firstBreak: null, unreplicated: 0 });
    expect(v.checked).toBe(texts.length * 2);
    await assertInvariants(teamId);
  });
});
