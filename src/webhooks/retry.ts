/**
 * The retry schedule of a delivery: exponential backoff with jitter, capped, for a bounded number
 * of attempts (limits.ts: about three days from the first attempt to the last). Pure, and a value
 * the endpoint object holds, so tests can shorten it instead of waiting days.
 */
import {
  WEBHOOK_BACKOFF_BASE_MS,
  WEBHOOK_BACKOFF_JITTER,
  WEBHOOK_BACKOFF_MAX_MS,
  WEBHOOK_MAX_ATTEMPTS,
} from "../limits";

export interface RetrySchedule {
  /** Attempts in one round (the first send and its retries; a redeliver starts a new round). */
  maxAttempts: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** Each delay is multiplied by a uniform factor in [1 - jitter, 1 + jitter). */
  jitter: number;
}

export const DEFAULT_RETRY_SCHEDULE: RetrySchedule = {
  maxAttempts: WEBHOOK_MAX_ATTEMPTS,
  backoffBaseMs: WEBHOOK_BACKOFF_BASE_MS,
  backoffMaxMs: WEBHOOK_BACKOFF_MAX_MS,
  jitter: WEBHOOK_BACKOFF_JITTER,
};

/**
 * How long to wait after the `attemptsMade`-th failed attempt of a round, or null when the round
 * is over (the delivery is then `failed`). Jitter spreads the retries of many deliveries that
 * failed together (a receiver that was down) so they do not all come back in the same second.
 */
export function retryDelayMs(
  attemptsMade: number,
  s: RetrySchedule,
  random: () => number = Math.random,
): number | null {
  if (attemptsMade >= s.maxAttempts) return null;
  const nominal = Math.min(s.backoffBaseMs * 2 ** Math.max(0, attemptsMade - 1), s.backoffMaxMs);
  return Math.max(0, Math.round(nominal * (1 - s.jitter + 2 * s.jitter * random())));
}
