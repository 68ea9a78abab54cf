/**
 * WebhookEndpoint: one SQLite-backed Durable Object per webhook endpoint (`idFromName(endpointId)`),
 * the only writer of its queue. Teams hand it events (fan-out.ts), durably and idempotently on the
 * event id; its alarm delivers them, signed per Standard Webhooks, retries failures with backoff
 * and jitter (retry.ts) until a round of attempts is used up (`failed`), and records every attempt.
 * Its configuration (URL, secret, enabled) is read from the directory at each run, so a change or
 * a deletion there takes effect at the next run; a 410 Gone disables the endpoint there.
 *
 * Order: a team hands off its events in seq order and waits for each hand-off, so they arrive
 * here in seq order (`n`). A run sends each team's due deliveries one after the other, lowest seq
 * first (teams in parallel), so a team's first attempts go out in seq order; a retry may come
 * after later events' first attempts.
 */
import { DurableObject } from "cloudflare:workers";
import type { EventType } from "../domain/events";
import {
  MAX_WEBHOOK_ERROR_LENGTH,
  MAX_WEBHOOK_PENDING_DELIVERIES,
  WEBHOOK_ALARM_BUDGET_MS,
  WEBHOOK_ATTEMPT_TIMEOUT_MS,
  WEBHOOK_ATTEMPTS_RETAINED_PER_DELIVERY,
  WEBHOOK_CONCURRENT_FETCHES,
  WEBHOOK_DELIVERIES_PER_ALARM,
  WEBHOOK_DELIVERIES_RETAINED,
  WEBHOOK_DIRECTORY_RETRY_MS,
  WEBHOOK_RETENTION_PURGE_BATCH,
} from "../limits";
import { webhookDirectory } from "./directory-object";
import type { AttemptView, DeliveryConfig, DeliveryPage, DeliveryStatus, DeliveryView } from "./model";
import { DEFAULT_RETRY_SCHEDULE, type RetrySchedule, retryDelayMs } from "./retry";
import { parseSecret, signature, signingKey } from "./signing";
import { checkWebhookUrl, urlPolicyOf } from "./url-policy";

/** One event as an endpoint queues it: what a delivery lists, and the exact body it sends. */
export interface QueuedEvent {
  id: string;
  teamId: string;
  seq: number;
  type: EventType;
  /** The OutboundEvent's JSON, made once by the hand-off: every attempt sends these bytes. */
  payload: string;
}

/** Every bound one endpoint object works under (limits.ts), with the retry schedule. */
export interface DeliveryLimits extends RetrySchedule {
  deliveriesPerRun: number;
  concurrentFetches: number;
  runBudgetMs: number;
  attemptTimeoutMs: number;
  directoryRetryMs: number;
  maxPending: number;
  retained: number;
  retentionPurgeBatch: number;
  attemptsRetained: number;
}

export const DEFAULT_DELIVERY_LIMITS: DeliveryLimits = {
  ...DEFAULT_RETRY_SCHEDULE,
  deliveriesPerRun: WEBHOOK_DELIVERIES_PER_ALARM,
  concurrentFetches: WEBHOOK_CONCURRENT_FETCHES,
  runBudgetMs: WEBHOOK_ALARM_BUDGET_MS,
  attemptTimeoutMs: WEBHOOK_ATTEMPT_TIMEOUT_MS,
  directoryRetryMs: WEBHOOK_DIRECTORY_RETRY_MS,
  maxPending: MAX_WEBHOOK_PENDING_DELIVERIES,
  retained: WEBHOOK_DELIVERIES_RETAINED,
  retentionPurgeBatch: WEBHOOK_RETENTION_PURGE_BATCH,
  attemptsRetained: WEBHOOK_ATTEMPTS_RETAINED_PER_DELIVERY,
};

const USER_AGENT = "credits-ledger-webhooks/1";

interface DeliveryRow {
  [k: string]: SqlStorageValue;
  n: number;
  id: string;
  event_id: string;
  team_id: string;
  seq: number;
  event_type: string;
  payload: string;
  status: string;
  round: number;
  round_attempts: number;
  attempt_count: number;
  next_attempt_at_ms: number | null;
  last_error: string | null;
  created_at_ms: number;
}

interface AttemptRow {
  [k: string]: SqlStorageValue;
  delivery_n: number;
  n: number;
  at_ms: number;
  duration_ms: number;
  http_status: number | null;
  error: string | null;
}

interface Identity {
  endpointId: string;
  generation: number;
}

/** What one attempt came to. */
interface Outcome {
  atMs: number;
  durationMs: number;
  httpStatus: number | null;
  error: string | null;
  delivered: boolean;
}

const iso = (ms: number) => new Date(ms).toISOString();
const newDeliveryId = () => `dlv_${crypto.randomUUID().replaceAll("-", "")}`;
const truncate = (text: string) =>
  text.length <= MAX_WEBHOOK_ERROR_LENGTH ? text : `${text.slice(0, MAX_WEBHOOK_ERROR_LENGTH - 1)}…`;

export class WebhookEndpoint extends DurableObject<Cloudflare.Env> {
  /**
   * The bounds and retry schedule this object delivers under. A property, not a constant, so a
   * test can shorten the schedule through runInDurableObject instead of waiting three days.
   */
  limits: DeliveryLimits = DEFAULT_DELIVERY_LIMITS;
  private readonly sql: SqlStorage;
  /** One run at a time: a second alarm (a test's runDurableObjectAlarm beside the real one) leaves it be. */
  private running = false;
  private key: { secret: string; key: CryptoKey } | null = null;

  constructor(ctx: DurableObjectState, env: Cloudflare.Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    ctx.storage.transactionSync(() => {
      this.sql.exec(
        `CREATE TABLE IF NOT EXISTS identity (
           one INTEGER PRIMARY KEY CHECK (one = 1),
           endpoint_id TEXT NOT NULL,
           generation INTEGER NOT NULL
         ) STRICT`,
      );
      // n is the arrival order; a team's events arrive in seq order (see the header).
      this.sql.exec(
        `CREATE TABLE IF NOT EXISTS deliveries (
           n INTEGER PRIMARY KEY,
           id TEXT NOT NULL UNIQUE,
           event_id TEXT NOT NULL UNIQUE,
           team_id TEXT NOT NULL,
           seq INTEGER NOT NULL,
           event_type TEXT NOT NULL,
           payload TEXT NOT NULL,
           status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
           round INTEGER NOT NULL,
           round_attempts INTEGER NOT NULL,
           attempt_count INTEGER NOT NULL,
           next_attempt_at_ms INTEGER,
           last_error TEXT,
           created_at_ms INTEGER NOT NULL
         ) STRICT`,
      );
      this.sql.exec(
        `CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (next_attempt_at_ms, n) WHERE status = 'pending'`,
      );
      this.sql.exec(
        `CREATE TABLE IF NOT EXISTS attempts (
           delivery_n INTEGER NOT NULL,
           n INTEGER NOT NULL,
           at_ms INTEGER NOT NULL,
           duration_ms INTEGER NOT NULL,
           http_status INTEGER,
           error TEXT,
           PRIMARY KEY (delivery_n, n)
         ) STRICT, WITHOUT ROWID`,
      );
    });
  }

  // ---- what the hand-off and the routes call ------------------------------------------------

  /**
   * Queues one delivery per event, in the order given, durably (the reply leaves only once the
   * writes are stored), at most once per event id: the same events again create nothing. Past
   * `maxPending` waiting deliveries a new one is stored `failed` (listed, redeliverable) rather
   * than queued, so a receiver that is down for days cannot fill the object. Events for an older
   * life of this endpoint id (a copy that has not seen a delete and re-create) are dropped.
   */
  async enqueue(endpointId: string, generation: number, events: readonly QueuedEvent[]): Promise<{ created: number }> {
    const nowMs = Date.now();
    const created = this.ctx.storage.transactionSync(() => {
      if (this.adopt(endpointId, generation) === "stale") return 0;
      let pending = this.pendingCount();
      let count = 0;
      for (const e of events) {
        const queued = pending < this.limits.maxPending;
        const inserted = this.sql
          .exec(
            `INSERT INTO deliveries (id, event_id, team_id, seq, event_type, payload, status, round, round_attempts,
               attempt_count, next_attempt_at_ms, last_error, created_at_ms)
             VALUES (?, ?, ?, ?, ?, ?, ?, 1, 0, 0, ?, ?, ?)
             ON CONFLICT (event_id) DO NOTHING RETURNING n`,
            newDeliveryId(),
            e.id,
            e.teamId,
            e.seq,
            e.type,
            e.payload,
            queued ? "pending" : "failed",
            queued ? nowMs : null,
            queued ? null : `not attempted: ${this.limits.maxPending} deliveries were already waiting`,
            nowMs,
          )
          .toArray().length;
        count += inserted;
        if (inserted > 0 && queued) pending += 1;
      }
      return count;
    });
    if (created > 0) await this.wakeAt(nowMs);
    return { created };
  }

  /** After a PUT (which may re-enable the endpoint): deliver what waits, now. */
  async wake(endpointId: string, generation: number): Promise<void> {
    const current = this.ctx.storage.transactionSync(() => this.adopt(endpointId, generation) === "current");
    if (current && this.pendingCount() > 0) await this.wakeAt(Date.now());
  }

  /** After a DELETE: drop everything of that life of the endpoint (a newer life is left alone). */
  async forget(endpointId: string, generation: number): Promise<void> {
    const identity = this.identity();
    if (!identity || identity.endpointId !== endpointId || identity.generation > generation) return;
    this.ctx.storage.transactionSync(() => this.wipe());
    await this.ctx.storage.deleteAlarm();
  }

  /** Deliveries newest first, with their attempts; `before` continues a previous page. */
  listDeliveries(endpointId: string, generation: number, limit: number, before: number | null): DeliveryPage {
    return this.ctx.storage.transactionSync(() => {
      if (this.adopt(endpointId, generation) === "stale") return { deliveries: [], nextBefore: null };
      const rows = this.sql
        .exec<DeliveryRow>("SELECT * FROM deliveries WHERE n < ? ORDER BY n DESC LIMIT ?", before ?? 2 ** 53, limit + 1)
        .toArray();
      const page = rows.slice(0, limit);
      const last = page.at(-1);
      return {
        deliveries: this.views(page),
        nextBefore: rows.length > limit && last !== undefined ? last.n : null,
      };
    });
  }

  /**
   * Sends a delivery again, whatever its status, with the same event id (receivers deduplicate on
   * it): a new round of attempts, the first one now. Null when there is no such delivery.
   */
  async redeliver(endpointId: string, generation: number, deliveryId: string): Promise<DeliveryView | null> {
    const nowMs = Date.now();
    const row = this.ctx.storage.transactionSync(() => {
      if (this.adopt(endpointId, generation) === "stale") return undefined;
      return this.sql
        .exec<DeliveryRow>(
          `UPDATE deliveries SET status = 'pending', round = round + 1, round_attempts = 0, next_attempt_at_ms = ?
           WHERE id = ? RETURNING *`,
          nowMs,
          deliveryId,
        )
        .toArray()[0];
    });
    if (!row) return null;
    await this.wakeAt(nowMs);
    return this.views([row])[0] ?? null;
  }

  // ---- the alarm ----------------------------------------------------------------------------

  override async alarm(): Promise<void> {
    if (this.running) return; // the run in progress sets the next alarm when it ends
    this.running = true;
    try {
      await this.deliverDue();
    } finally {
      this.running = false;
    }
  }

  /** One run: read the config, send what is due (bounded), record it, purge, set the next alarm. */
  private async deliverDue(): Promise<void> {
    const identity = this.identity();
    if (!identity) return;
    let config: DeliveryConfig | null;
    try {
      config = await webhookDirectory(this.env).deliveryConfig(identity.endpointId);
    } catch (err) {
      console.error(JSON.stringify({ webhookEndpoint: identity.endpointId, directoryUnreachable: String(err) }));
      await this.ctx.storage.setAlarm(Date.now() + this.limits.directoryRetryMs);
      return;
    }
    if (config === null || config.generation > identity.generation) {
      // Deleted (or deleted and created again): nothing queued belongs to the endpoint that is there now.
      this.ctx.storage.transactionSync(() => this.wipe());
      return;
    }
    if (config.generation < identity.generation || config.status === "disabled") return; // a PUT wakes it
    const startedMs = Date.now();
    const due = this.sql
      .exec<DeliveryRow>(
        `SELECT * FROM deliveries WHERE status = 'pending' AND next_attempt_at_ms <= ?
         ORDER BY next_attempt_at_ms, n LIMIT ?`,
        startedMs,
        this.limits.deliveriesPerRun,
      )
      .toArray();
    const verdict = checkWebhookUrl(config.url, urlPolicyOf(this.env.OUTBOUND_URL_POLICY));
    if (!verdict.ok) {
      // Checked again here: a URL saved under another policy, or edited in storage, is never fetched.
      const error = `not sent: the URL is refused by OUTBOUND_URL_POLICY: ${verdict.reason}`;
      for (const d of due)
        this.record(d, { atMs: startedMs, durationMs: 0, httpStatus: null, error, delivered: false });
    } else if (due.length > 0) {
      await this.sendAll(config, verdict.url, due, startedMs);
    }
    this.purgeFinished();
    await this.scheduleNext();
  }

  /** Sends `due`: one lane per team, lowest seq first, up to `concurrentFetches` lanes at once. */
  private async sendAll(config: DeliveryConfig, url: string, due: DeliveryRow[], startedMs: number): Promise<void> {
    const key = await this.keyFor(config.secret);
    const lanes = new Map<string, DeliveryRow[]>();
    for (const d of due) {
      const lane = lanes.get(d.team_id);
      if (lane) lane.push(d);
      else lanes.set(d.team_id, [d]);
    }
    const waiting = [...lanes.values()].map((lane) => lane.sort((a, b) => a.seq - b.seq));
    let stop = false;
    const runLanes = async () => {
      for (let lane = waiting.shift(); lane !== undefined; lane = waiting.shift()) {
        for (const d of lane) {
          // A 410 stops the run; so does the time budget (the rest stays due for the next run).
          if (stop || Date.now() - startedMs > this.limits.runBudgetMs) {
            stop = true;
            return;
          }
          const outcome = await this.attempt(url, key, d);
          this.record(d, outcome);
          if (outcome.httpStatus === 410 && !stop) {
            stop = true;
            await this.disable(config, outcome.atMs);
          }
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.limits.concurrentFetches, waiting.length) }, runLanes));
  }

  /** One POST of a delivery, signed; never throws. */
  private async attempt(url: string, key: CryptoKey, d: DeliveryRow): Promise<Outcome> {
    const atMs = Date.now();
    const timestamp = Math.floor(atMs / 1000);
    const headers = {
      "content-type": "application/json",
      "user-agent": USER_AGENT,
      "webhook-id": d.event_id,
      "webhook-timestamp": String(timestamp),
      "webhook-signature": await signature(key, d.event_id, timestamp, d.payload),
    };
    try {
      // Redirects are not followed: the URL policy judged this URL, not where it points next.
      const res = await fetch(url, {
        method: "POST",
        headers,
        body: d.payload,
        redirect: "manual",
        signal: AbortSignal.timeout(this.limits.attemptTimeoutMs),
      });
      const durationMs = Date.now() - atMs;
      // Only the status counts; the body is not read.
      await res.body?.cancel().catch(() => undefined);
      const delivered = res.status >= 200 && res.status < 300;
      return { atMs, durationMs, httpStatus: res.status, error: delivered ? null : statusError(res.status), delivered };
    } catch (err) {
      const durationMs = Date.now() - atMs;
      const timedOut = err instanceof Error && (err.name === "TimeoutError" || err.name === "AbortError");
      const error = timedOut ? `timeout: no answer within ${this.limits.attemptTimeoutMs} ms` : `network error: ${err}`;
      return { atMs, durationMs, httpStatus: null, error, delivered: false };
    }
  }

  /** Stores an attempt and what it means for its delivery: delivered, retried later, or failed. */
  private record(d: DeliveryRow, o: Outcome): void {
    this.ctx.storage.transactionSync(() => {
      const cur = this.sql
        .exec<{ round: number; round_attempts: number; attempt_count: number; status: string }>(
          "SELECT round, round_attempts, attempt_count, status FROM deliveries WHERE n = ?",
          d.n,
        )
        .toArray()[0];
      if (!cur) return; // dropped meanwhile (the endpoint was deleted)
      const attemptNo = cur.attempt_count + 1;
      const error = o.error === null ? null : truncate(o.error);
      this.sql.exec(
        "INSERT INTO attempts (delivery_n, n, at_ms, duration_ms, http_status, error) VALUES (?, ?, ?, ?, ?, ?)",
        d.n,
        attemptNo,
        o.atMs,
        o.durationMs,
        o.httpStatus,
        error,
      );
      this.sql.exec(
        "DELETE FROM attempts WHERE delivery_n = ? AND n <= ?",
        d.n,
        attemptNo - this.limits.attemptsRetained,
      );
      // A redeliver started a new round while this attempt was out: it is history, the round decides.
      if (cur.round !== d.round || cur.status !== "pending") {
        this.sql.exec("UPDATE deliveries SET attempt_count = ? WHERE n = ?", attemptNo, d.n);
        return;
      }
      const roundAttempts = cur.round_attempts + 1;
      const delay = o.delivered ? null : retryDelayMs(roundAttempts, this.limits);
      const status: DeliveryStatus = o.delivered ? "delivered" : delay === null ? "failed" : "pending";
      this.sql.exec(
        `UPDATE deliveries SET status = ?, round_attempts = ?, attempt_count = ?, next_attempt_at_ms = ?, last_error = ?
         WHERE n = ?`,
        status,
        roundAttempts,
        attemptNo,
        delay === null ? null : Date.now() + delay,
        error,
        d.n,
      );
    });
  }

  /** A 410 Gone: the receiver asks to stop. Disabled in the directory; what waits stays for a PUT. */
  private async disable(config: DeliveryConfig, atMs: number): Promise<void> {
    const reason = `the receiver answered 410 Gone at ${iso(atMs)}`;
    try {
      await webhookDirectory(this.env).disableEndpoint(config.id, config.generation, reason);
    } catch (err) {
      // The delivery stays pending: its next attempt gets the 410 again and disables then.
      console.error(JSON.stringify({ webhookEndpoint: config.id, disableFailed: String(err) }));
    }
  }

  /** Drops the oldest finished deliveries beyond `retained`, a bounded batch per run. */
  private purgeFinished(): void {
    this.ctx.storage.transactionSync(() => {
      const old = this.sql
        .exec<{ n: number }>(
          "SELECT n FROM deliveries WHERE status != 'pending' ORDER BY n DESC LIMIT ? OFFSET ?",
          this.limits.retentionPurgeBatch,
          this.limits.retained,
        )
        .toArray();
      for (const { n } of old) {
        this.sql.exec("DELETE FROM attempts WHERE delivery_n = ?", n);
        this.sql.exec("DELETE FROM deliveries WHERE n = ?", n);
      }
    });
  }

  /** The alarm for the soonest pending delivery, never in the past; none when nothing waits. */
  private async scheduleNext(): Promise<void> {
    const next = this.sql
      .exec<{ at: number }>(
        "SELECT next_attempt_at_ms AS at FROM deliveries WHERE status = 'pending' ORDER BY next_attempt_at_ms LIMIT 1",
      )
      .toArray()[0];
    if (next) await this.ctx.storage.setAlarm(Math.max(next.at, Date.now()));
  }

  private async wakeAt(atMs: number): Promise<void> {
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > atMs) await this.ctx.storage.setAlarm(atMs);
  }

  /** The HMAC key of the current secret, imported once per secret. */
  private async keyFor(secret: string): Promise<CryptoKey> {
    if (this.key?.secret !== secret) {
      const parsed = parseSecret(secret);
      if (!parsed.ok) throw new Error(`the stored secret of this endpoint is not valid: ${parsed.reason}`);
      this.key = { secret, key: await signingKey(parsed.key) };
    }
    return this.key.key;
  }

  // ---- storage ------------------------------------------------------------------------------

  private identity(): Identity | null {
    const row = this.sql
      .exec<{ endpoint_id: string; generation: number }>("SELECT endpoint_id, generation FROM identity")
      .toArray()[0];
    return row ? { endpointId: row.endpoint_id, generation: row.generation } : null;
  }

  /**
   * Makes this object hold the `generation` life of the endpoint: a newer life than the stored one
   * wipes what the older one left; an older one is "stale" (the caller's copy is behind).
   */
  private adopt(endpointId: string, generation: number): "current" | "stale" {
    const identity = this.identity();
    if (identity && identity.endpointId !== endpointId) throw new Error("endpoint object addressed by another id");
    if (identity && identity.generation === generation) return "current";
    if (identity && identity.generation > generation) return "stale";
    this.wipe();
    this.sql.exec("INSERT INTO identity (one, endpoint_id, generation) VALUES (1, ?, ?)", endpointId, generation);
    return "current";
  }

  private wipe(): void {
    this.sql.exec("DELETE FROM attempts");
    this.sql.exec("DELETE FROM deliveries");
    this.sql.exec("DELETE FROM identity");
  }

  private pendingCount(): number {
    return this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM deliveries WHERE status = 'pending'").one().n;
  }

  private views(rows: readonly DeliveryRow[]): DeliveryView[] {
    const first = rows.at(-1)?.n ?? 0;
    const last = rows[0]?.n ?? 0;
    const byDelivery = new Map<number, AttemptView[]>();
    if (rows.length > 0) {
      const low = Math.min(first, last);
      const high = Math.max(first, last);
      for (const a of this.sql
        .exec<AttemptRow>("SELECT * FROM attempts WHERE delivery_n BETWEEN ? AND ? ORDER BY delivery_n, n", low, high)
        .toArray()) {
        const attempt = { at: iso(a.at_ms), durationMs: a.duration_ms, httpStatus: a.http_status, error: a.error };
        const list = byDelivery.get(a.delivery_n);
        if (list) list.push(attempt);
        else byDelivery.set(a.delivery_n, [attempt]);
      }
    }
    return rows.map((r) => ({
      id: r.id,
      eventId: r.event_id,
      eventType: r.event_type,
      teamId: r.team_id,
      seq: r.seq,
      status: r.status as DeliveryStatus,
      attemptCount: r.attempt_count,
      nextAttemptAt: r.status === "pending" && r.next_attempt_at_ms !== null ? iso(r.next_attempt_at_ms) : null,
      lastError: r.last_error,
      createdAt: iso(r.created_at_ms),
      attempts: byDelivery.get(r.n) ?? [],
    }));
  }
}

function statusError(status: number): string {
  if (status >= 300 && status < 400) return `the receiver answered ${status} (redirects are not followed)`;
  if (status === 410) return "the receiver answered 410 Gone: the endpoint is disabled";
  return `the receiver answered ${status}`;
}
