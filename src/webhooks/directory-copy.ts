/**
 * The worker isolate's copy of which endpoints are enabled and what they listen to, so a busy team
 * does not ask the directory once per hand-off. A copy younger than WEBHOOK_DIRECTORY_COPY_TTL_MS
 * (2 s) is used as it is; an older one asks the directory for anything newer than its version
 * (one small RPC, answered with null when nothing changed). So an endpoint created, changed,
 * disabled or deleted is seen by every hand-off at most 2 s later: events handed off within that
 * window go by the previous list (an endpoint object drops events meant for an older life of its
 * id; a disabled endpoint keeps what it was handed for when a PUT enables it again).
 */
import { WEBHOOK_DIRECTORY_COPY_TTL_MS } from "../limits";
import { webhookDirectory } from "./directory-object";
import type { Subscription } from "./model";

interface Copy {
  version: number;
  fetchedAtMs: number;
  endpoints: readonly Subscription[];
}

let copy: Copy | null = null;

/**
 * The enabled endpoints, from the copy or, when it is older than the TTL, from the directory.
 * Throws when the directory cannot be read: a hand-off then fails and is retried, never guessed.
 * No promise is shared between callers: a Worker must not await another request's I/O.
 */
export async function enabledSubscriptions(env: Cloudflare.Env): Promise<readonly Subscription[]> {
  if (copy !== null && Date.now() - copy.fetchedAtMs < WEBHOOK_DIRECTORY_COPY_TTL_MS) return copy.endpoints;
  const known = copy;
  const fresh = await webhookDirectory(env).subscriptionsIfNewer(known?.version ?? -1);
  const fetchedAtMs = Date.now();
  if (fresh !== null) copy = { version: fresh.version, fetchedAtMs, endpoints: fresh.endpoints };
  else if (known !== null) copy = { ...known, fetchedAtMs };
  return copy?.endpoints ?? [];
}

/** Drops the copy, so the next hand-off reads the directory (the routes after a change; tests). */
export function forgetSubscriptions(): void {
  copy = null;
}
