/**
 * Every bound the service enforces, in one place (TigerBeetle style: a limit on everything).
 * Units are in the names. The relations between limits are checked at the bottom, at import time,
 * so a bad edit fails every test instead of failing in production.
 */

/** Largest credit amount one grant, spend, hold or capture may carry. */
export const MAX_AMOUNT_CREDITS = 1_000_000_000_000; // 10^12
/** Largest total a team may hold; keeps every sum far inside Number.MAX_SAFE_INTEGER. */
export const MAX_BALANCE_CREDITS = 1_000_000_000_000_000; // 10^15
/** Largest `quantity` on a spend or hold. */
export const MAX_QUANTITY = 1_000_000_000;
/** Grant priorities are 0..MAX_PRIORITY; lower is spent first. */
export const MAX_PRIORITY = 1_000_000;

/** Request bodies: ordinary routes and the batch route. */
export const MAX_BODY_BYTES = 64 * 1024;
export const MAX_BATCH_BODY_BYTES = 1024 * 1024;
/** Items in one `spends/batch` request. */
export const MAX_BATCH_ITEMS = 1000;

/** Page sizes for lists. */
export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 200;

/** History exports (CSV) read this many entries per page, so an export never holds more in memory. */
export const EXPORT_PAGE_ROWS = 500;
/** Groups in one usage report, largest first; the rest are cut and the report says so. */
export const MAX_USAGE_GROUPS = 1000;

/** Holds live between these bounds; extend resets the deadline within the same bounds. */
export const MIN_HOLD_TTL_SECONDS = 1;
export const MAX_HOLD_TTL_SECONDS = 7 * 24 * 60 * 60;
/** A grant's expiry may be at most this far in the future. */
export const MAX_GRANT_LIFETIME_SECONDS = 100 * 365 * 24 * 60 * 60;

/** Strings supplied by clients. */
export const MAX_TEAM_ID_LENGTH = 128;
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;
export const MAX_REFERENCE_LENGTH = 200;
export const MAX_NAME_LENGTH = 200;
export const MAX_PLAN_ID_LENGTH = 64;
export const MAX_FEATURE_LENGTH = 64;
export const MAX_DIMENSIONS = 16;
export const MAX_DIMENSION_KEY_LENGTH = 40;
export const MAX_DIMENSION_VALUE_LENGTH = 200;
export const MAX_SEATS = 100_000;
/** `X-Actor-Id`: the person a request acts for (middleware/actor.ts). */
export const MAX_ACTOR_ID_LENGTH = 128;

/** Idempotency records are kept at least this long (API.md promises 24 hours), then purged. */
export const IDEMPOTENCY_RETENTION_SECONDS = 48 * 60 * 60;
/** Records purged per alarm run, so a purge never stalls the object. */
export const IDEMPOTENCY_PURGE_BATCH = 500;

/** Expirations (grants and holds) settled per call; the alarm continues where a call stopped. */
export const SETTLE_BATCH = 500;

/** Outbox to D1: entries per D1 batch, batches per alarm run, and the retry backoff. */
export const OUTBOX_ROWS_PER_D1_BATCH = 500;
export const OUTBOX_BATCHES_PER_ALARM = 20;
export const OUTBOX_FLUSH_DELAY_MS = 200;
export const OUTBOX_BACKOFF_BASE_MS = 1_000;
export const OUTBOX_BACKOFF_MAX_MS = 60_000;
/** A D1 write slower than this counts as failed; the retry is safe because inserts are idempotent. */
export const OUTBOX_D1_TIMEOUT_MS = 10_000;

/**
 * History through the queue (src/history-queue/, object/outbox.ts): the alarm sends its entries as
 * messages of at most HISTORY_ROWS_PER_MESSAGE rows and HISTORY_MESSAGE_MAX_BYTES (Queues allow
 * 128 KB a message, 1 KB = 1,000 bytes, ~100 of them metadata), in sendBatch calls of at most
 * HISTORY_MESSAGES_PER_SEND messages and HISTORY_SEND_MAX_BYTES (Queues allow 100 and 256 KB).
 * An alarm run sends at most HISTORY_SENDS_PER_ALARM calls, then goes on in the next run.
 */
export const HISTORY_ROWS_PER_MESSAGE = 200;
export const HISTORY_MESSAGE_MAX_BYTES = 96_000;
export const HISTORY_MESSAGES_PER_SEND = 100;
export const HISTORY_SEND_MAX_BYTES = 240_000;
export const HISTORY_SENDS_PER_ALARM = 20;
/** A sendBatch slower than this counts as failed; resending is safe (D1's insert is idempotent). */
export const HISTORY_SEND_TIMEOUT_MS = 10_000;
/**
 * Sent entries that D1 has not confirmed after this long (no progress: the queue's retries run out
 * well before, wrangler.toml max_retries × retry_delay) make the alarm read D1's mark itself and
 * send what is missing again; the wait doubles each time it finds nothing new, up to the max.
 */
export const HISTORY_CONFIRM_AFTER_MS = 5 * 60_000;
export const HISTORY_CONFIRM_MAX_MS = 60 * 60_000;
/** Dead letters one re-drive reads per database (POST /v1/admin/history/redrive; call again for more). */
export const HISTORY_REDRIVE_BATCH = 500;
/** Entries per D1 batch of the consumer: many teams' messages, one batch (each message at most HISTORY_ROWS_PER_MESSAGE). */
export const HISTORY_ROWS_PER_CONSUMER_BATCH = 100 * HISTORY_ROWS_PER_MESSAGE;

/** Chain verification over D1: rows per D1 read, and entries checked per request (then a cursor). */
export const VERIFY_PAGE_ROWS = 1_000;
export const VERIFY_MAX_ENTRIES_PER_REQUEST = 100_000;

/**
 * Outbound webhooks (src/webhooks/, README "Outbound webhooks"). The endpoints live in one
 * directory object; each endpoint's own object queues its deliveries and sends them from its alarm.
 */
/** Endpoints per account (the directory's rows), and the length of an endpoint's id. */
export const MAX_WEBHOOK_ENDPOINTS = 20;
export const MAX_WEBHOOK_ENDPOINT_ID_LENGTH = 64;
/** Event types one endpoint lists (there are 16; `["*"]` means all of them). */
export const MAX_WEBHOOK_EVENT_TYPES = 32;
export const MAX_WEBHOOK_URL_LENGTH = 2_048;
/** A secret is `whsec_` + base64 of this many random bytes: given ones in the range, generated ones exactly 32. */
export const WEBHOOK_SECRET_MIN_BYTES = 24;
export const WEBHOOK_SECRET_MAX_BYTES = 64;
export const WEBHOOK_SECRET_GENERATED_BYTES = 32;
/** A worker isolate's copy of the endpoint list is used this long before the directory is asked again. */
export const WEBHOOK_DIRECTORY_COPY_TTL_MS = 2_000;
/** Events per enqueue call to one endpoint object (a hand-off is split into calls of this many). */
export const WEBHOOK_EVENTS_PER_ENQUEUE = 100;
/** An event's JSON body larger than this is refused at hand-off (a bug in the producer, loudly). */
export const WEBHOOK_MAX_PAYLOAD_BYTES = 64 * 1024;
/** One alarm run of an endpoint: attempts at most, fetches at once (Workers allow 6 open connections), time. */
export const WEBHOOK_DELIVERIES_PER_ALARM = 100;
export const WEBHOOK_CONCURRENT_FETCHES = 6;
export const WEBHOOK_ALARM_BUDGET_MS = 60_000;
/** An attempt that has no answer after this long is a failed attempt (timeout), retried. */
export const WEBHOOK_ATTEMPT_TIMEOUT_MS = 10_000;
/**
 * Retries: the delay after attempt n is min(base × 2^(n-1), max) × a jitter in [1 - j, 1 + j), and
 * a delivery is `failed` after this many attempts: 1 min, 2, 4, … 256 min, then 8 h eight times,
 * 72.5 hours from the first attempt to the last (WEBHOOK_RETRY_SPAN_MS, before jitter).
 */
export const WEBHOOK_MAX_ATTEMPTS = 18;
export const WEBHOOK_BACKOFF_BASE_MS = 60_000;
export const WEBHOOK_BACKOFF_MAX_MS = 8 * 60 * 60_000;
export const WEBHOOK_BACKOFF_JITTER = 0.2;
export const WEBHOOK_RETRY_SPAN_MS = Array.from({ length: WEBHOOK_MAX_ATTEMPTS - 1 }, (_, i) =>
  Math.min(WEBHOOK_BACKOFF_BASE_MS * 2 ** i, WEBHOOK_BACKOFF_MAX_MS),
).reduce((sum, delay) => sum + delay, 0);
/** When the directory cannot be read at an alarm run, the run is retried after this long. */
export const WEBHOOK_DIRECTORY_RETRY_MS = 30_000;
/** Deliveries waiting per endpoint; past it a new one is stored `failed` (redeliverable), not queued. */
export const MAX_WEBHOOK_PENDING_DELIVERIES = 10_000;
/** Finished (delivered or failed) deliveries kept per endpoint, the oldest dropped first, per run at most. */
export const WEBHOOK_DELIVERIES_RETAINED = 10_000;
export const WEBHOOK_RETENTION_PURGE_BATCH = 500;
/** Attempts kept per delivery (redeliveries add more), and the length of an attempt's error text. */
export const WEBHOOK_ATTEMPTS_RETAINED_PER_DELIVERY = 40;
export const MAX_WEBHOOK_ERROR_LENGTH = 300;

/** The price book and plans (catalog/catalog-object.ts) and the worker's copies of them (client/catalog-copy.ts). */
export const MAX_FEATURES = 1_000;
export const MAX_PLANS = 200;
export const MAX_PACKS_PER_PLAN = 20;
export const MAX_PRICE_MINOR = 100_000_000; // 1,000,000.00 in a 2-decimal currency
export const MAX_CREDITS_PER_CURRENCY_UNIT = 1_000_000;
/** A copy younger than this is used as is; older, it is refreshed in the background. */
export const CATALOG_REFRESH_AFTER_MS = 1_000;
/** A copy older than this is never used: the bound on how stale a price can be (README). */
export const CATALOG_MAX_STALENESS_MS = 2_000;

/**
 * Feature-restricted credits: a plan's `monthlyFeatureCreditsPerSeat` names at most this many
 * features (each a grant per period and per seat change, so the count bounds the writes of one
 * period's opening).
 */
export const MAX_FEATURE_ALLOCATIONS_PER_PLAN = 16;

/** Estimates (POST …/estimate): items per request. */
export const MAX_ESTIMATE_ITEMS = 100;

/** Plans on teams: periods are monthly; events and cross-team messages leave through outboxes. */
export const EVENTS_PER_HANDOFF = 100;
export const EVENTS_BACKOFF_BASE_MS = 1_000;
export const EVENTS_BACKOFF_MAX_MS = 5 * 60_000;
export const MESSAGES_PER_ALARM = 20;
/** The alarm refreshes a team's copy of its plan when its next period starts within this. */
export const PLAN_REFRESH_AHEAD_MS = 60_000;
export const MESSAGES_BACKOFF_BASE_MS = 1_000;
export const MESSAGES_BACKOFF_MAX_MS = 10 * 60_000;

function check(condition: boolean, message: string): void {
  if (!condition) throw new Error(`limits.ts: ${message}`);
}
check(MAX_AMOUNT_CREDITS * MAX_BATCH_ITEMS <= MAX_BALANCE_CREDITS, "a full batch must fit in a balance");
check(MAX_BALANCE_CREDITS * 2 < Number.MAX_SAFE_INTEGER, "balance arithmetic must stay safe");
check(MAX_AMOUNT_CREDITS * MAX_QUANTITY > 0, "quantity bound sane");
check(DEFAULT_PAGE_SIZE <= MAX_PAGE_SIZE, "default page within max");
check(EXPORT_PAGE_ROWS >= MAX_PAGE_SIZE && EXPORT_PAGE_ROWS <= 1000, "export pages are bounded");
check(MIN_HOLD_TTL_SECONDS < MAX_HOLD_TTL_SECONDS, "hold TTL range");
check(OUTBOX_BACKOFF_BASE_MS <= OUTBOX_BACKOFF_MAX_MS, "backoff range");
check(IDEMPOTENCY_RETENTION_SECONDS >= 24 * 60 * 60, "API.md promises 24 hours of idempotency");
check(OUTBOX_ROWS_PER_D1_BATCH <= 1000, "D1 batches stay small");
check(
  HISTORY_ROWS_PER_MESSAGE * 400 < HISTORY_MESSAGE_MAX_BYTES,
  "a message's rows usually fit its bytes (about 330 B a row)",
);
check(HISTORY_MESSAGE_MAX_BYTES + 100 <= 128_000, "a message stays under Queues' 128 KB, metadata included");
check(HISTORY_MESSAGE_MAX_BYTES <= HISTORY_SEND_MAX_BYTES, "one message fits in one sendBatch");
check(HISTORY_SEND_MAX_BYTES + HISTORY_MESSAGES_PER_SEND * 100 <= 256_000, "a sendBatch stays under 256 KB");
check(HISTORY_MESSAGES_PER_SEND <= 100, "Queues take 100 messages per sendBatch");
check(HISTORY_CONFIRM_AFTER_MS <= HISTORY_CONFIRM_MAX_MS, "confirmation wait range");
check(CATALOG_REFRESH_AFTER_MS < CATALOG_MAX_STALENESS_MS, "a copy refreshes before it is too stale");
check(CATALOG_MAX_STALENESS_MS <= 5_000, "the issue's staleness target is 5 s");
check(MAX_PRICE_MINOR * MAX_CREDITS_PER_CURRENCY_UNIT <= MAX_AMOUNT_CREDITS * 100, "a pack's credits fit in a grant");
check(VERIFY_PAGE_ROWS <= VERIFY_MAX_ENTRIES_PER_REQUEST, "a verify page fits in one request");
check(WEBHOOK_BACKOFF_BASE_MS <= WEBHOOK_BACKOFF_MAX_MS, "webhook backoff range");
check(
  WEBHOOK_RETRY_SPAN_MS >= 2.5 * 86_400_000 && WEBHOOK_RETRY_SPAN_MS <= 3.5 * 86_400_000,
  "webhook retries span about three days",
);
check(WEBHOOK_BACKOFF_JITTER >= 0 && WEBHOOK_BACKOFF_JITTER < 1, "jitter keeps every delay positive");
check(WEBHOOK_CONCURRENT_FETCHES <= 6, "Workers allow 6 simultaneous open connections per invocation");
check(WEBHOOK_ATTEMPT_TIMEOUT_MS < WEBHOOK_ALARM_BUDGET_MS, "an attempt fits in one alarm run");
check(WEBHOOK_ATTEMPTS_RETAINED_PER_DELIVERY >= WEBHOOK_MAX_ATTEMPTS, "a delivery keeps all of one round's attempts");
check(WEBHOOK_SECRET_MIN_BYTES >= 24 && WEBHOOK_SECRET_MIN_BYTES <= WEBHOOK_SECRET_GENERATED_BYTES, "secret sizes");
check(WEBHOOK_SECRET_GENERATED_BYTES <= WEBHOOK_SECRET_MAX_BYTES, "a generated secret is one we accept");
check(WEBHOOK_DELIVERIES_RETAINED >= MAX_WEBHOOK_PENDING_DELIVERIES, "a full queue that fails stays listable");

/**
 * Credit requests (bank transfer, crypto, other; src/object/credit-requests.ts): the credits one
 * request without a pack may ask for. An accepted request is one grant, and its price at the
 * lowest rate (1 credit per currency unit, 2 decimals) stays a safe integer of minor units.
 */
export const MAX_CREDIT_REQUEST_CREDITS = 1_000_000_000; // 10^9
check(MAX_CREDIT_REQUEST_CREDITS <= MAX_AMOUNT_CREDITS, "an accepted credit request fits in one grant");
check(MAX_CREDIT_REQUEST_CREDITS * 100 < Number.MAX_SAFE_INTEGER, "a credit request's price is a safe integer");
/** Payments with credits (src/object/payments.ts): one payment draws at most this many credits. */
export const MAX_PAYMENT_CREDITS = MAX_AMOUNT_CREDITS;

/**
 * Stripe (src/stripe/, routes/checkout.ts, routes/stripe-webhook.ts). A webhook's signature is
 * accepted for this long after its timestamp (Stripe's own default), and no longer: a replayed
 * old delivery is refused. Calls to Stripe's API time out and retry (the SDK's idempotency keys
 * make its retries safe).
 */
export const STRIPE_WEBHOOK_TOLERANCE_SECONDS = 300;
export const STRIPE_TIMEOUT_MS = 10_000;
export const STRIPE_MAX_NETWORK_RETRIES = 2;
/** Checkout's success and cancel URLs. */
export const MAX_CHECKOUT_URL_LENGTH = 2_048;
/** Unmatched Stripe events kept for an admin (the rest are still counted), and shown per page. */
export const MAX_STRIPE_EVENT_PAYLOAD_BYTES = 32 * 1024;

/** Auto-recharge (object/auto-recharge.ts): the monthly cap a team may choose, and when it gives up. */
export const MAX_AUTO_RECHARGES_PER_MONTH = 100;
/** Failed payments in a row after which auto-recharge turns itself off. */
export const AUTO_RECHARGE_MAX_FAILURES = 3;
/** Network or Stripe faults (not declines) are retried from the alarm with backoff, this many times. */
export const AUTO_RECHARGE_MAX_ATTEMPTS = 5;
export const AUTO_RECHARGE_BACKOFF_BASE_MS = 5_000;
/** How long one attempt holds its recharge: longer than the Stripe call with its own retries. */
export const AUTO_RECHARGE_LEASE_MS = 60_000;
check(
  AUTO_RECHARGE_LEASE_MS > STRIPE_TIMEOUT_MS * (STRIPE_MAX_NETWORK_RETRIES + 1),
  "a recharge's lease outlasts its Stripe call",
);

/**
 * API keys (src/keys/). How many keys the account may hold, how long a name may be, and how fresh
 * the worker's copy of the key directory is: a key made or revoked is seen by every isolate
 * within KEYS_MAX_STALENESS_MS of the call that made or revoked it (at once by the isolate that
 * served it). A key id the copy does not know asks the directory again, at most once per
 * KEYS_MISS_REFRESH_MS per isolate, so a key made elsewhere works at once and guessing ids cannot
 * turn every request into an RPC. `lastUsedAt` is written at most once per key per isolate per
 * KEY_LAST_USED_RESOLUTION_MS, off the request's path.
 */
export const MAX_API_KEYS = 10_000;
export const MAX_API_KEY_NAME_LENGTH = 100;
export const KEYS_REFRESH_AFTER_MS = 1_000;
export const KEYS_MAX_STALENESS_MS = 2_000;
export const KEYS_MISS_REFRESH_MS = 250;
export const KEY_LAST_USED_RESOLUTION_MS = 60_000;
check(KEYS_REFRESH_AFTER_MS < KEYS_MAX_STALENESS_MS, "a key copy refreshes before it is too stale");
check(KEYS_MISS_REFRESH_MS < KEYS_REFRESH_AFTER_MS, "a miss refreshes sooner than the schedule");

/** Subaccounts one agency's pool may have (domain/pools.ts), and members it may cap. */
export const MAX_SUBACCOUNTS_PER_AGENCY = 1_000;
export const MAX_MEMBER_CAPS = 10_000;
/** A cap on pooled credits a period: at most the largest amount. */
export const MAX_CAP_CREDITS_PER_PERIOD = 1_000_000_000_000; // 10^12
check(MAX_CAP_CREDITS_PER_PERIOD <= MAX_BALANCE_CREDITS, "a cap fits in a balance");
