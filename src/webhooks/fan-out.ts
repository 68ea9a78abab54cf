/**
 * The hand-off from a team's event outbox to the webhook endpoints: called by the team object's
 * alarm, never on a spend's path, with that team's next undelivered events in seq order. It
 * resolves once every enabled endpoint subscribed to each event's type has durably queued its
 * delivery, and throws if any endpoint could not: the team keeps the events and hands them off
 * again later, which creates nothing twice (endpoints queue at most once per event id). The
 * endpoint list comes from the isolate's copy (directory-copy.ts, 2 s TTL): an endpoint created
 * after a hand-off never receives the events of that hand-off.
 */
import type { OutboundEvent } from "../domain/events";
import { WEBHOOK_EVENTS_PER_ENQUEUE, WEBHOOK_MAX_PAYLOAD_BYTES } from "../limits";
import { enabledSubscriptions } from "./directory-copy";
import type { QueuedEvent } from "./endpoint-object";

export async function handOffEvents(env: Cloudflare.Env, events: readonly OutboundEvent[]): Promise<void> {
  if (events.length === 0) return;
  const queued = events.map(toQueued);
  const subscriptions = await enabledSubscriptions(env);
  const handOffs = subscriptions.map(async (s) => {
    const all = s.events.includes("*");
    const mine = queued.filter((q) => all || s.events.includes(q.type));
    const endpoint = env.WEBHOOK_ENDPOINT.getByName(s.id);
    // One call after the other: the endpoint numbers deliveries in arrival order, which keeps seq order.
    for (let i = 0; i < mine.length; i += WEBHOOK_EVENTS_PER_ENQUEUE)
      await endpoint.enqueue(s.id, s.generation, mine.slice(i, i + WEBHOOK_EVENTS_PER_ENQUEUE));
  });
  const results = await Promise.allSettled(handOffs);
  const refused = results.flatMap((r, i) =>
    r.status === "rejected" ? [`${subscriptions[i]?.id ?? "?"}: ${String(r.reason)}`] : [],
  );
  if (refused.length > 0)
    throw new Error(`webhook hand-off: ${refused.length} endpoint(s) did not accept: ${refused.join("; ")}`);
}

/** The delivery body, made once per event: the OutboundEvent's JSON, its fields in a fixed order. */
function toQueued(e: OutboundEvent): QueuedEvent {
  const payload = JSON.stringify({
    id: e.id,
    teamId: e.teamId,
    seq: e.seq,
    type: e.type,
    createdAt: e.createdAt,
    data: e.data,
  });
  const bytes = new TextEncoder().encode(payload).length;
  if (bytes > WEBHOOK_MAX_PAYLOAD_BYTES)
    throw new Error(`event ${e.id} is ${bytes} bytes as JSON; webhook bodies are at most ${WEBHOOK_MAX_PAYLOAD_BYTES}`);
  return { id: e.id, teamId: e.teamId, seq: e.seq, type: e.type, payload };
}
