/**
 * What the webhook tests share: the real receiver (its URL from the globalSetup, a fresh path per
 * test, telling it how to answer, reading what it got), endpoints through the API, events, the
 * hand-off with a fresh directory copy, white-box access to an endpoint's object, and waiting
 * for what its alarm does (the alarm runs by itself; a wait has a deadline, never a speed claim).
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, inject } from "vitest";
import type { EventType, OutboundEvent } from "../../src/domain/events";
import { forgetSubscriptions } from "../../src/webhooks/directory-copy";
import type { DeliveryLimits, WebhookEndpoint } from "../../src/webhooks/endpoint-object";
import { handOffEvents } from "../../src/webhooks/fan-out";
import type { DeliveryView, EndpointView, PutEndpointReply } from "../../src/webhooks/model";
import { api, type CallResult, expectStatus } from "../support";
import type { ReceivedRequest, ReceiverControl } from "../support/receiver-global-setup";

export const RECEIVER = inject("webhookReceiverUrl");

let counter = 0;
const unique = (prefix: string) => {
  counter += 1;
  return `${prefix}-${counter}-${crypto.randomUUID().slice(0, 8)}`;
};

export const newEndpointId = () => unique("ep");
export const newTeamId = () => unique("team");

/** A receiver path no other test uses, and its full URL. */
export function newHook(): { path: string; url: string } {
  const path = `/hook/${unique("h")}`;
  return { path, url: `${RECEIVER}${path}` };
}

/** From now on the receiver answers `path` with `status` (after `delayMs`). */
export async function answer(path: string, status: number, delayMs = 0): Promise<void> {
  const control: ReceiverControl = { path, status, delayMs };
  const res = await fetch(`${RECEIVER}/__control`, { method: "POST", body: JSON.stringify(control) });
  expect(res.status).toBe(200);
  await res.body?.cancel();
}

/** What the receiver got on `path`, oldest first. */
export async function received(path: string): Promise<ReceivedRequest[]> {
  const res = await fetch(`${RECEIVER}/__records?path=${encodeURIComponent(path)}`);
  expect(res.status).toBe(200);
  return (await res.json()) as ReceivedRequest[];
}

export interface EndpointBody {
  url: string;
  events: string[];
  secret?: string;
}

export function putEndpoint(id: string, body: EndpointBody): Promise<CallResult<PutEndpointReply>> {
  return api<PutEndpointReply>(`/v1/webhook-endpoints/${id}`, { method: "PUT", body });
}

/** Creates an endpoint (201) and returns it with its secret. */
export async function createEndpoint(
  id: string,
  url: string,
  events: string[] = ["*"],
): Promise<PutEndpointReply & { secret: string }> {
  const res = await putEndpoint(id, { url, events });
  expectStatus(res, 201);
  const secret = res.body.secret;
  if (secret === undefined) throw new Error("a created endpoint's answer carries its secret");
  return { ...res.body, secret };
}

export async function getEndpoint(id: string): Promise<EndpointView> {
  const res = await api<EndpointView>(`/v1/webhook-endpoints/${id}`);
  expectStatus(res, 200);
  return res.body;
}

/**
 * Deletes every endpoint (after each test): otherwise each later hand-off also goes to the
 * endpoints of earlier tests, and a file's endpoints would add up to MAX_WEBHOOK_ENDPOINTS.
 */
export async function deleteAllEndpoints(): Promise<void> {
  const list = await api<{ endpoints: EndpointView[] }>("/v1/webhook-endpoints");
  expectStatus(list, 200);
  for (const e of list.body.endpoints)
    expectStatus(await api(`/v1/webhook-endpoints/${e.id}`, { method: "DELETE" }), 204);
}

/** Every delivery of an endpoint, through the API, following the cursor. */
export async function deliveriesOf(id: string, pageSize = 200): Promise<DeliveryView[]> {
  const all: DeliveryView[] = [];
  let cursor: string | null = null;
  do {
    const query: string = cursor === null ? `?limit=${pageSize}` : `?limit=${pageSize}&cursor=${cursor}`;
    const res: CallResult<{ deliveries: DeliveryView[]; nextCursor: string | null }> = await api(
      `/v1/webhook-endpoints/${id}/deliveries${query}`,
    );
    expectStatus(res, 200);
    all.push(...res.body.deliveries);
    cursor = res.body.nextCursor;
  } while (cursor !== null);
  return all;
}

let eventCounter = 0;
/** An event as a team object would hand it off. */
export function event(teamId: string, seq: number, type: EventType = "grant.created"): OutboundEvent {
  eventCounter += 1;
  return {
    id: `evt_${crypto.randomUUID().replaceAll("-", "")}`,
    teamId,
    seq,
    type,
    createdAt: new Date(Date.UTC(2026, 0, 1, 0, 0, eventCounter)).toISOString(),
    data: { seq, note: `event ${eventCounter}` },
  };
}

/** The hand-off as a team's alarm makes it, with the directory read afresh (not the 2 s copy). */
export async function handOff(events: readonly OutboundEvent[]): Promise<void> {
  forgetSubscriptions();
  await handOffEvents(env, events);
}

export function endpointStub(id: string) {
  return env.WEBHOOK_ENDPOINT.getByName(id);
}

/** Changes the limits the endpoint's object works under (its retry schedule, mostly). */
export function setLimits(id: string, overrides: Partial<DeliveryLimits>): Promise<void> {
  return runInDurableObject(endpointStub(id), (instance: WebhookEndpoint) => {
    instance.limits = { ...instance.limits, ...overrides };
  });
}

/** Retries within milliseconds instead of minutes, so a test sees a whole round. */
export const FAST_RETRIES: Partial<DeliveryLimits> = { backoffBaseMs: 20, backoffMaxMs: 100, jitter: 0 };

/** Polls `read` until `done` holds, or fails with what it last read after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  read: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = await read();
  while (!done(last)) {
    if (Date.now() > deadline)
      throw new Error(`waited ${timeoutMs} ms for ${what}; last: ${JSON.stringify(last).slice(0, 1500)}`);
    await new Promise((r) => setTimeout(r, 50));
    last = await read();
  }
  return last;
}

/** Waits until every delivery of the endpoint is finished (delivered or failed). */
export function settledDeliveries(id: string, count: number, timeoutMs?: number): Promise<DeliveryView[]> {
  return waitFor(
    `${count} finished deliveries of ${id}`,
    () => deliveriesOf(id),
    (ds) => ds.length === count && ds.every((d) => d.status !== "pending"),
    timeoutMs,
  );
}
