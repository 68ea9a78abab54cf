/**
 * Handing the team's events (event-store.ts) to the webhook endpoints, from its alarm: the next
 * events after the handed-off mark, in seq order and in bounded batches, go to
 * webhooks/fan-out.ts, which returns once every subscribed endpoint holds them durably; only then
 * does the mark move. A failure leaves the mark and retries with exponential backoff, so an event
 * is handed off at least once and, since endpoints deduplicate on the event id, delivered once.
 * A spend never waits for any of this: it only appended its events in its own transaction.
 */
import { EVENTS_BACKOFF_BASE_MS, EVENTS_BACKOFF_MAX_MS, EVENTS_PER_HANDOFF } from "../limits";
import { handOffEvents } from "../webhooks/fan-out";
import type { LedgerStore } from "./store";

const HANDED_KEY = "events.handedSeq";
const RETRY_KEY = "events.retry";

export interface EventsState {
  handedSeq: number;
  lastSeq: number;
  attempts: number;
  nextAttemptAtMs: number;
}

export function eventsState(store: LedgerStore): EventsState {
  const metas = store.getMetas([HANDED_KEY, RETRY_KEY]);
  const retry = metas.get(RETRY_KEY);
  const { attempts, nextAttemptAtMs } = retry
    ? (JSON.parse(retry) as { attempts: number; nextAttemptAtMs: number })
    : { attempts: 0, nextAttemptAtMs: 0 };
  return { handedSeq: Number(metas.get(HANDED_KEY) ?? 0), lastSeq: store.events.lastSeq(), attempts, nextAttemptAtMs };
}

/** Hands off what is waiting (a few batches at most); returns when to try again, or null. */
export async function handOff(store: LedgerStore, env: Cloudflare.Env, teamId: string): Promise<number | null> {
  for (let batch = 0; batch < 5; batch++) {
    const state = eventsState(store);
    if (state.handedSeq >= state.lastSeq) return null;
    if (state.nextAttemptAtMs > Date.now()) return state.nextAttemptAtMs;
    const events = store.events.after(teamId, state.handedSeq, EVENTS_PER_HANDOFF);
    const last = events.at(-1);
    if (!last) return null;
    try {
      await handOffEvents(env, events);
      store.transaction(() => {
        store.setMeta(HANDED_KEY, String(last.seq));
        store.deleteMeta(RETRY_KEY);
      });
    } catch (err) {
      const backoff = Math.min(EVENTS_BACKOFF_MAX_MS, EVENTS_BACKOFF_BASE_MS * 2 ** Math.min(state.attempts, 20));
      const nextAttemptAtMs = Date.now() + backoff;
      console.error(JSON.stringify({ teamId, eventsHandOff: String(err), attempts: state.attempts + 1 }));
      store.transaction(() =>
        store.setMeta(RETRY_KEY, JSON.stringify({ attempts: state.attempts + 1, nextAttemptAtMs })),
      );
      return nextAttemptAtMs;
    }
  }
  return Date.now();
}
