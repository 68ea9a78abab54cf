/**
 * The whole path, through the worker: a team's grant writes its `grant.created` event, the team
 * object's alarm hands it off (src/object/events.ts → webhooks/fan-out.ts), and the endpoint's
 * alarm delivers it to the real receiver, signed. Nothing here calls the hand-off by hand.
 */
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import type { OutboundEvent } from "../../src/domain/events";
import { api, expectStatus, newKey } from "../support";
import { createEndpoint, newEndpointId, newHook, newTeamId, received, waitFor } from "./support";

describe("a team's event reaches its webhook endpoint", () => {
  it("a grant's grant.created is delivered, signed, with the team's seq", async () => {
    const hook = newHook();
    const { secret } = await createEndpoint(newEndpointId(), hook.url, ["grant.created"]);
    const team = newTeamId();
    expectStatus(await api(`/v1/teams/${team}`, { method: "PUT", body: { name: "Webhook team" } }), 201);
    // Nothing in this file read the endpoint list before the endpoint existed, so the isolate's
    // copy (up to 2 s old otherwise) is read fresh at the first hand-off.
    const grant = await api<{ grant: { id: string } }>(`/v1/teams/${team}/grants`, {
      body: { amount: 25, category: "paid", source: "manual" },
      idempotencyKey: newKey(),
    });
    expectStatus(grant, 201);
    const [r] = await waitFor(
      "the grant.created delivery",
      () => received(hook.path),
      (rs) => rs.length >= 1,
      30_000,
    );
    const e = new Webhook(secret).verify(r?.body ?? "", r?.headers ?? {}) as OutboundEvent;
    expect(e).toMatchObject({ teamId: team, type: "grant.created" });
    expect(e.seq).toBeGreaterThanOrEqual(1);
    expect(r?.headers["webhook-id"]).toBe(e.id);
    expect(JSON.stringify(e.data)).toContain(grant.body.grant.id);
  });
});
