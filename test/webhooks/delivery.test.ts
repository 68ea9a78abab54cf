/**
 * Deliveries end to end, to a real HTTP receiver on 127.0.0.1 (test/support/receiver-global-setup.ts):
 * the hand-off queues them durably and idempotently, the endpoint's alarm sends them signed per
 * Standard Webhooks (checked with the standardwebhooks package), filtered by type, a team's first
 * attempts in seq order; failures are retried until they succeed or the round is used up
 * (`failed`, redeliverable with the same webhook-id), a 410 disables the endpoint, a timeout and a
 * URL refused at send time are failed attempts, and a deleted endpoint drops what it had queued.
 * The retry schedule is shortened per object through its `limits` (see support.ts), or a stored
 * next-attempt time is moved and the alarm run with runDurableObjectAlarm.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { Webhook } from "standardwebhooks";
import { afterEach, describe, expect, it } from "vitest";
import type { OutboundEvent } from "../../src/domain/events";
import { enabledSubscriptions, forgetSubscriptions } from "../../src/webhooks/directory-copy";
import type { WebhookDirectory } from "../../src/webhooks/directory-object";
import { webhookDirectory } from "../../src/webhooks/directory-object";
import type { WebhookEndpoint } from "../../src/webhooks/endpoint-object";
import { handOffEvents } from "../../src/webhooks/fan-out";
import type { DeliveryView } from "../../src/webhooks/model";
import { api, expectProblem, expectStatus } from "../support";
import type { ReceivedRequest } from "../support/receiver-global-setup";
import {
  answer,
  createEndpoint,
  deleteAllEndpoints,
  deliveriesOf,
  endpointStub,
  event,
  FAST_RETRIES,
  getEndpoint,
  handOff,
  newEndpointId,
  newHook,
  newTeamId,
  putEndpoint,
  received,
  setLimits,
  settledDeliveries,
  waitFor,
} from "./support";

const idsOf = (rs: readonly ReceivedRequest[]) => rs.map((r) => r.headers["webhook-id"]);
const byEvent = (ds: readonly DeliveryView[]) => new Map(ds.map((d) => [d.eventId, d]));

/** The receiver got at least `n` requests on `path`. */
const receivedAtLeast = (path: string, n: number) =>
  waitFor(
    `${n} requests on ${path}`,
    () => received(path),
    (rs) => rs.length >= n,
  );

afterEach(deleteAllEndpoints);

describe("delivery", () => {
  it("sends each event once, signed per Standard Webhooks: it verifies, webhook-id is the event id", async () => {
    const hook = newHook();
    const id = newEndpointId();
    const { secret } = await createEndpoint(id, hook.url);
    const team = newTeamId();
    const events = [event(team, 1, "grant.created"), event(team, 2, "balance.low"), event(team, 3, "hold.expired")];
    await handOff(events);

    const ds = await settledDeliveries(id, 3);
    const got = await received(hook.path);
    expect(idsOf(got).sort()).toEqual(events.map((e) => e.id).sort());
    const wh = new Webhook(secret);
    for (const r of got) {
      const e = events.find((x) => x.id === r.headers["webhook-id"]) as OutboundEvent;
      expect(r.method).toBe("POST");
      expect(r.headers["content-type"]).toBe("application/json");
      expect(r.headers["webhook-signature"]).toMatch(/^v1,/);
      expect(Number(r.headers["webhook-timestamp"])).toBeGreaterThan(Date.now() / 1000 - 300);
      // Throws unless the signature over id.timestamp.body is the secret's.
      expect(wh.verify(r.body, r.headers)).toEqual(e);
      expect(JSON.parse(r.body)).toEqual({
        id: e.id,
        teamId: e.teamId,
        seq: e.seq,
        type: e.type,
        createdAt: e.createdAt,
        data: e.data,
      });
      expect(() => new Webhook(secret).verify(r.body.replace('"seq"', '"Seq"'), r.headers)).toThrow();
    }
    for (const d of ds) {
      expect(d).toMatchObject({
        status: "delivered",
        attemptCount: 1,
        lastError: null,
        nextAttemptAt: null,
        teamId: team,
      });
      expect(d.attempts).toHaveLength(1);
      expect(d.attempts[0]).toMatchObject({ httpStatus: 200, error: null });
      expect(d.id).toMatch(/^dlv_[0-9a-f]{32}$/);
    }
  });

  it("is idempotent on the event id: the same hand-off twice (and at once) delivers each event once", async () => {
    const hook = newHook();
    const id = newEndpointId();
    await createEndpoint(id, hook.url);
    const team = newTeamId();
    const events = Array.from({ length: 6 }, (_, i) => event(team, i + 1));
    await handOff(events);
    await handOff(events);
    await Promise.all([handOffEvents(env, events), handOffEvents(env, events.slice(2))]);
    const ds = await settledDeliveries(id, 6);
    expect(ds.every((d) => d.status === "delivered" && d.attemptCount === 1)).toBe(true);
    await handOff(events); // after delivery too
    const got = await received(hook.path);
    expect(idsOf(got).sort()).toEqual(events.map((e) => e.id).sort());
    expect((await deliveriesOf(id)).length).toBe(6);
  });

  it("delivers only the types an endpoint listens to", async () => {
    const team = newTeamId();
    const hooks = { grants: newHook(), all: newHook(), some: newHook() };
    const ids = { grants: newEndpointId(), all: newEndpointId(), some: newEndpointId() };
    await createEndpoint(ids.grants, hooks.grants.url, ["grant.created"]);
    await createEndpoint(ids.all, hooks.all.url, ["*"]);
    await createEndpoint(ids.some, hooks.some.url, ["balance.low", "hold.expired"]);
    const events = [
      event(team, 1, "grant.created"),
      event(team, 2, "balance.low"),
      event(team, 3, "topup.succeeded"),
      event(team, 4, "grant.created"),
      event(team, 5, "hold.expired"),
    ];
    await handOff(events);
    await settledDeliveries(ids.all, 5);
    await settledDeliveries(ids.grants, 2);
    await settledDeliveries(ids.some, 2);
    const typesOf = async (path: string) =>
      (await received(path)).map((r) => (JSON.parse(r.body) as OutboundEvent).seq).sort((a, b) => a - b);
    expect(await typesOf(hooks.all.path)).toEqual([1, 2, 3, 4, 5]);
    expect(await typesOf(hooks.grants.path)).toEqual([1, 4]);
    expect(await typesOf(hooks.some.path)).toEqual([2, 5]);
  });

  it("sends a team's first attempts in seq order, teams interleaved", async () => {
    const hook = newHook();
    const id = newEndpointId();
    await createEndpoint(id, hook.url);
    // Several runs (7 attempts a run) and fewer lanes than teams (2 at a time).
    await setLimits(id, { deliveriesPerRun: 7, concurrentFetches: 2 });
    const teams = [newTeamId(), newTeamId(), newTeamId()];
    // Each team hands off in seq order, batch after batch, as its alarm does; the teams at once.
    forgetSubscriptions();
    await Promise.all(
      teams.map(async (team) => {
        for (let batch = 0; batch < 4; batch++)
          await handOffEvents(
            env,
            Array.from({ length: 5 }, (_, i) => event(team, batch * 5 + i + 1)),
          );
      }),
    );
    await settledDeliveries(id, 60);
    const got = await received(hook.path);
    expect(got).toHaveLength(60);
    for (const team of teams) {
      const seqs = got
        .map((r) => JSON.parse(r.body) as OutboundEvent)
        .filter((e) => e.teamId === team)
        .map((e) => e.seq);
      expect(seqs, team).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    }
  });

  it("a receiver down for a while, then up, gets every event exactly once as a success", async () => {
    const hook = newHook();
    const id = newEndpointId();
    await createEndpoint(id, hook.url);
    await setLimits(id, { ...FAST_RETRIES, maxAttempts: 1_000 });
    await answer(hook.path, 500);
    const team = newTeamId();
    const events = Array.from({ length: 5 }, (_, i) => event(team, i + 1));
    await handOff(events);
    await waitFor(
      "three failed attempts of every delivery",
      () => deliveriesOf(id),
      (ds) => ds.length === 5 && ds.every((d) => d.attemptCount >= 3),
    );
    await answer(hook.path, 204);
    const ds = await settledDeliveries(id, 5);

    const got = await received(hook.path);
    for (const e of events) {
      const mine = got.filter((r) => r.headers["webhook-id"] === e.id);
      const successes = mine.filter((r) => r.answered === 204);
      expect(successes, e.id).toHaveLength(1);
      // Seen again only after answering non-2xx: every request before the success got a 500.
      expect(mine.at(-1)?.answered, e.id).toBe(204);
      expect(
        mine.slice(0, -1).every((r) => r.answered === 500),
        e.id,
      ).toBe(true);
      const d = byEvent(ds).get(e.id);
      expect(d?.status).toBe("delivered");
      expect(d?.attemptCount).toBe(mine.length);
      expect(d?.attempts.map((a) => a.httpStatus)).toEqual(mine.map((r) => r.answered));
      expect(d?.attempts[0]?.error).toBe("the receiver answered 500");
      expect(d?.attempts.at(-1)?.error).toBeNull();
      for (const a of d?.attempts ?? []) expect(a.durationMs).toBeGreaterThanOrEqual(0);
    }
  });

  it("a 410 Gone disables the endpoint; hand-offs skip it; a PUT enables it and what waited goes out", async () => {
    const hook = newHook();
    const id = newEndpointId();
    await createEndpoint(id, hook.url);
    await setLimits(id, FAST_RETRIES);
    await answer(hook.path, 410);
    const team = newTeamId();
    const before = [event(team, 1), event(team, 2)];
    await handOff(before);
    const disabled = await waitFor(
      "the endpoint disabled",
      () => getEndpoint(id),
      (e) => e.status === "disabled",
    );
    expect(disabled.disabledReason).toMatch(/410 Gone/);
    const first = await received(hook.path);
    expect(first).toHaveLength(1); // the run stopped at the 410
    expect((await deliveriesOf(id)).every((d) => d.status === "pending")).toBe(true);

    const during = event(team, 3);
    await handOff([during]);
    expect((await deliveriesOf(id)).map((d) => d.eventId)).not.toContain(during.id);
    const [anyDelivery] = await deliveriesOf(id);
    expectProblem(
      await api(`/v1/webhook-endpoints/${id}/deliveries/${anyDelivery?.id}/redeliver`, { method: "POST" }),
      409,
      "conflict",
    );

    await answer(hook.path, 200);
    const enabled = await putEndpoint(id, { url: hook.url, events: ["*"] });
    expectStatus(enabled, 200);
    expect(enabled.body).toMatchObject({ status: "enabled", disabledReason: null });
    const ds = await settledDeliveries(id, 2);
    expect(ds.every((d) => d.status === "delivered")).toBe(true);
    const got = await received(hook.path);
    expect(
      got
        .filter((r) => r.answered === 200)
        .map((r) => r.headers["webhook-id"])
        .sort(),
    ).toEqual(before.map((e) => e.id).sort());
    expect(idsOf(got)).not.toContain(during.id);
  });

  it("exhausting the retries marks a delivery failed; redeliver sends the same webhook-id again", async () => {
    const hook = newHook();
    const id = newEndpointId();
    const { secret } = await createEndpoint(id, hook.url);
    await setLimits(id, { ...FAST_RETRIES, maxAttempts: 3 });
    await answer(hook.path, 503);
    const e = event(newTeamId(), 1, "balance.depleted");
    await handOff([e]);
    const [failed] = await settledDeliveries(id, 1);
    expect(failed).toMatchObject({ status: "failed", attemptCount: 3, nextAttemptAt: null });
    expect(failed?.lastError).toBe("the receiver answered 503");
    expect(failed?.attempts.map((a) => a.httpStatus)).toEqual([503, 503, 503]);
    expect(idsOf(await received(hook.path))).toEqual([e.id, e.id, e.id]);

    await answer(hook.path, 200);
    const again = await api<{ delivery: DeliveryView }>(
      `/v1/webhook-endpoints/${id}/deliveries/${failed?.id}/redeliver`,
      { method: "POST" },
    );
    expectStatus(again, 202);
    expect(again.body.delivery).toMatchObject({ id: failed?.id, eventId: e.id, status: "pending" });
    const [done] = await waitFor(
      "the redelivery",
      () => deliveriesOf(id),
      (ds) => ds[0]?.status === "delivered",
    );
    expect(done?.attemptCount).toBe(4);
    const got = await received(hook.path);
    expect(idsOf(got)).toEqual([e.id, e.id, e.id, e.id]);
    expect(new Webhook(secret).verify(got[3]?.body ?? "", got[3]?.headers ?? {})).toEqual(e);
    // A delivered one can be sent again too (the receiver deduplicates on webhook-id).
    expectStatus(await api(`/v1/webhook-endpoints/${id}/deliveries/${failed?.id}/redeliver`, { method: "POST" }), 202);
    await receivedAtLeast(hook.path, 5);
    expect(idsOf(await received(hook.path))).toEqual([e.id, e.id, e.id, e.id, e.id]);
  });

  it("retries after about a minute by default (jitter ±20%); moving the stored time runs it now", async () => {
    const hook = newHook();
    const id = newEndpointId();
    await createEndpoint(id, hook.url);
    await answer(hook.path, 500);
    await handOff([event(newTeamId(), 1)]);
    const [waiting] = await waitFor(
      "a first failed attempt",
      () => deliveriesOf(id),
      (ds) => ds[0]?.attemptCount === 1,
    );
    const lastAt = Date.parse(waiting?.attempts[0]?.at ?? "");
    const nextAt = Date.parse(waiting?.nextAttemptAt ?? "");
    expect(nextAt - lastAt).toBeGreaterThanOrEqual(48_000 - 1_000);
    expect(nextAt - lastAt).toBeLessThanOrEqual(72_000 + 10_000);
    await answer(hook.path, 200);
    const stub = endpointStub(id);
    await runInDurableObject(stub, (_i: WebhookEndpoint, state) => {
      state.storage.sql.exec("UPDATE deliveries SET next_attempt_at_ms = ? WHERE status = 'pending'", Date.now() - 1);
    });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const [done] = await deliveriesOf(id);
    expect(done).toMatchObject({ status: "delivered", attemptCount: 2 });
  });

  it("an attempt with no answer within the timeout is a failed attempt", async () => {
    const hook = newHook();
    const id = newEndpointId();
    await createEndpoint(id, hook.url);
    await setLimits(id, { ...FAST_RETRIES, maxAttempts: 2, attemptTimeoutMs: 300 });
    await answer(hook.path, 200, 5_000);
    await handOff([event(newTeamId(), 1)]);
    const [d] = await settledDeliveries(id, 1);
    expect(d).toMatchObject({ status: "failed", attemptCount: 2 });
    for (const a of d?.attempts ?? []) {
      expect(a.httpStatus).toBeNull();
      expect(a.error).toMatch(/^timeout: no answer within 300 ms/);
    }
    await receivedAtLeast(hook.path, 2);
  });

  it("a network error is a failed attempt", async () => {
    const id = newEndpointId();
    // Nothing listens on port 9 of 127.0.0.1 (discard): the connection is refused.
    await createEndpoint(id, "http://127.0.0.1:9/nothing");
    await setLimits(id, { ...FAST_RETRIES, maxAttempts: 2 });
    await handOff([event(newTeamId(), 1)]);
    const [d] = await settledDeliveries(id, 1);
    expect(d?.status).toBe("failed");
    expect(d?.attempts.every((a) => a.httpStatus === null && /^network error/.test(a.error ?? ""))).toBe(true);
  });

  it("checks the URL again before every attempt: a refused one is a failed attempt, never sent", async () => {
    const hook = newHook();
    const id = newEndpointId();
    await createEndpoint(id, hook.url);
    await setLimits(id, { ...FAST_RETRIES, maxAttempts: 2 });
    // As if saved under another policy: the stored URL is one the policy refuses.
    await runInDurableObject(webhookDirectory(env), (_d: WebhookDirectory, state) => {
      state.storage.sql.exec("UPDATE endpoints SET url = ? WHERE id = ?", "https://10.1.2.3/hook", id);
    });
    const e = event(newTeamId(), 1);
    await handOff([e]);
    const [d] = await settledDeliveries(id, 1);
    expect(d).toMatchObject({ status: "failed", attemptCount: 2 });
    expect(d?.lastError).toMatch(/refused by OUTBOUND_URL_POLICY: 10\.1\.2\.3 is a private/);
    expect(d?.attempts.every((a) => a.httpStatus === null && a.durationMs === 0)).toBe(true);

    // Fixed by a PUT, the failed delivery goes out when redelivered.
    expectStatus(await putEndpoint(id, { url: hook.url, events: ["*"] }), 200);
    expectStatus(await api(`/v1/webhook-endpoints/${id}/deliveries/${d?.id}/redeliver`, { method: "POST" }), 202);
    await waitFor(
      "the redelivery",
      () => deliveriesOf(id),
      (ds) => ds[0]?.status === "delivered",
    );
    expect(idsOf(await received(hook.path))).toEqual([e.id]);
  });

  it("an endpoint created after a hand-off does not receive that hand-off's events", async () => {
    const team = newTeamId();
    const early = [event(team, 1), event(team, 2)];
    await handOff(early);
    const hook = newHook();
    const id = newEndpointId();
    await createEndpoint(id, hook.url);
    const late = event(team, 3);
    await handOff([late]);
    const ds = await settledDeliveries(id, 1);
    expect(ds.map((d) => d.eventId)).toEqual([late.id]);
    expect(idsOf(await received(hook.path))).toEqual([late.id]);
  });

  it("pages deliveries newest first with an opaque cursor", async () => {
    const hook = newHook();
    const id = newEndpointId();
    await createEndpoint(id, hook.url);
    const team = newTeamId();
    const events = Array.from({ length: 7 }, (_, i) => event(team, i + 1));
    await handOff(events);
    await settledDeliveries(id, 7);
    const page1 = await api<{ deliveries: DeliveryView[]; nextCursor: string | null }>(
      `/v1/webhook-endpoints/${id}/deliveries?limit=3`,
    );
    expect(page1.body.deliveries.map((d) => d.seq)).toEqual([7, 6, 5]);
    expect(page1.body.nextCursor).toEqual(expect.any(String));
    const all = await deliveriesOf(id, 3);
    expect(all.map((d) => d.seq)).toEqual([7, 6, 5, 4, 3, 2, 1]);
  });

  it("keeps the most recent finished deliveries, and the most recent attempts of each", async () => {
    const hook = newHook();
    const id = newEndpointId();
    await createEndpoint(id, hook.url);
    await setLimits(id, { ...FAST_RETRIES, maxAttempts: 4, retained: 3, attemptsRetained: 2 });
    await answer(hook.path, 500);
    const team = newTeamId();
    await handOff([event(team, 1)]);
    const [failed] = await settledDeliveries(id, 1);
    expect(failed?.attemptCount).toBe(4);
    expect(failed?.attempts).toHaveLength(2);
    await answer(hook.path, 200);
    await handOff(Array.from({ length: 5 }, (_, i) => event(team, i + 2)));
    await receivedAtLeast(hook.path, 4 + 5);
    const kept = await waitFor(
      "the oldest finished deliveries purged",
      () => deliveriesOf(id),
      (ds) => ds.length === 3 && ds.every((d) => d.status === "delivered"),
    );
    expect(kept.map((d) => d.seq)).toEqual([6, 5, 4]);
  });

  it("past its pending bound an endpoint stores new deliveries as failed, listed and redeliverable", async () => {
    const hook = newHook();
    const id = newEndpointId();
    await createEndpoint(id, hook.url);
    await setLimits(id, { maxPending: 2 });
    await answer(hook.path, 500); // with the default schedule the first two wait a minute
    const team = newTeamId();
    const events = Array.from({ length: 4 }, (_, i) => event(team, i + 1));
    await handOff(events);
    const ds = byEvent(await deliveriesOf(id));
    expect([1, 2, 3, 4].map((s) => ds.get(events[s - 1]?.id ?? "")?.status)).toEqual([
      "pending",
      "pending",
      "failed",
      "failed",
    ]);
    expect(ds.get(events[3]?.id ?? "")?.lastError).toMatch(/not attempted: 2 deliveries were already waiting/);
    expect(ds.get(events[3]?.id ?? "")?.attemptCount).toBe(0);
  });
});

describe("hand-off and deletion", () => {
  it("throws when an endpoint cannot accept, and a retry then creates nothing twice elsewhere", async () => {
    const good = { id: newEndpointId(), hook: newHook() };
    const bad = { id: newEndpointId(), hook: newHook() };
    await createEndpoint(good.id, good.hook.url);
    await createEndpoint(bad.id, bad.hook.url);
    // The bad endpoint's object believes it is another endpoint: every enqueue throws.
    await runInDurableObject(endpointStub(bad.id), (_i: WebhookEndpoint, state) => {
      state.storage.sql.exec("INSERT OR REPLACE INTO identity (one, endpoint_id, generation) VALUES (1, 'x', 0)");
    });
    const events = [event(newTeamId(), 1), event(newTeamId(), 1)];
    await expect(handOff(events)).rejects.toThrow(/did not accept/);
    await runInDurableObject(endpointStub(bad.id), (_i: WebhookEndpoint, state) => {
      state.storage.sql.exec("DELETE FROM identity");
    });
    await handOff(events);
    await settledDeliveries(good.id, 2);
    await settledDeliveries(bad.id, 2);
    expect(idsOf(await received(good.hook.path)).sort()).toEqual(events.map((e) => e.id).sort());
    expect(idsOf(await received(bad.hook.path)).sort()).toEqual(events.map((e) => e.id).sort());
  });

  it("DELETE drops what the endpoint had pending; the same id created again starts empty", async () => {
    const hook = newHook();
    const id = newEndpointId();
    await createEndpoint(id, hook.url);
    await answer(hook.path, 500);
    await handOff([event(newTeamId(), 1), event(newTeamId(), 1)]);
    await waitFor(
      "first attempts",
      () => deliveriesOf(id),
      (ds) => ds.length === 2 && ds.every((d) => d.attemptCount === 1),
    );
    expectStatus(await api(`/v1/webhook-endpoints/${id}`, { method: "DELETE" }), 204);
    const left = await runInDurableObject(endpointStub(id), (_i: WebhookEndpoint, state) => ({
      deliveries: state.storage.sql.exec("SELECT * FROM deliveries").toArray().length,
      attempts: state.storage.sql.exec("SELECT * FROM attempts").toArray().length,
    }));
    expect(left).toEqual({ deliveries: 0, attempts: 0 });

    await createEndpoint(id, hook.url);
    expect(await deliveriesOf(id)).toEqual([]);
  });

  it("an endpoint deleted behind its object's back is found at the next run, which drops its queue", async () => {
    const hook = newHook();
    const id = newEndpointId();
    await createEndpoint(id, hook.url);
    await answer(hook.path, 500);
    await handOff([event(newTeamId(), 1)]);
    await waitFor(
      "a first attempt",
      () => deliveriesOf(id),
      (ds) => ds[0]?.attemptCount === 1,
    );
    // Deleted in the directory only (as if the route's call to the object had failed).
    expect(await webhookDirectory(env).deleteEndpoint(id)).not.toBeNull();
    const stub = endpointStub(id);
    await runInDurableObject(stub, (_i: WebhookEndpoint, state) => {
      state.storage.sql.exec("UPDATE deliveries SET next_attempt_at_ms = 0");
    });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const left = await runInDurableObject(stub, (_i: WebhookEndpoint, state) =>
      state.storage.sql.exec("SELECT * FROM deliveries").toArray(),
    );
    expect(left).toEqual([]);
    expect(await runDurableObjectAlarm(stub)).toBe(false);
    expect(await received(hook.path)).toHaveLength(1);
  });

  it("reads the endpoint list through the isolate's copy, refreshed from the directory", async () => {
    forgetSubscriptions();
    const first = await enabledSubscriptions(env);
    expect(await enabledSubscriptions(env)).toBe(first); // within the TTL: the same copy, no RPC
    const id = newEndpointId();
    await createEndpoint(id, newHook().url, ["balance.low"]);
    forgetSubscriptions();
    const fresh = await enabledSubscriptions(env);
    expect(fresh.find((s) => s.id === id)).toMatchObject({ id, events: ["balance.low"] });
  });
});
