/**
 * WebhookDirectory: the account's webhook endpoints, in one SQLite-backed Durable Object (named
 * "directory"), their only writer. It checks what a PUT asks for (the URL policy, the secret's
 * format, the number of endpoints), keeps each endpoint's secret, and numbers every change with one
 * directory version, so the worker's copies (directory-copy.ts) ask "anything newer than N?".
 * The endpoint objects read their configuration here at each delivery run; a 410 disables here.
 */
import { DurableObject } from "cloudflare:workers";
import { type Failure, failure } from "../domain/failure";
import type { Success } from "../domain/vocabulary";
import { MAX_WEBHOOK_ENDPOINTS } from "../limits";
import type {
  DeliveryConfig,
  EndpointInput,
  EndpointStatus,
  EndpointView,
  EventSelector,
  PutEndpointReply,
  SubscriptionList,
} from "./model";
import { generateSecret, parseSecret, secretPrefix } from "./signing";
import { checkWebhookUrl, urlPolicyOf } from "./url-policy";

/** The name of the one directory object. */
export const DIRECTORY_NAME = "directory";

/** The directory object, from anywhere that has the bindings. */
export function webhookDirectory(env: Cloudflare.Env) {
  return env.WEBHOOK_DIRECTORY.getByName(DIRECTORY_NAME);
}

interface EndpointRow {
  [k: string]: SqlStorageValue;
  id: string;
  url: string;
  events: string;
  secret: string;
  status: string;
  disabled_reason: string | null;
  generation: number;
  version: number;
  created_at_ms: number;
  updated_at_ms: number;
}

const iso = (ms: number) => new Date(ms).toISOString();

export class WebhookDirectory extends DurableObject<Cloudflare.Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Cloudflare.Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    ctx.storage.transactionSync(() => {
      this.sql.exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT");
      this.sql.exec(
        `CREATE TABLE IF NOT EXISTS endpoints (
           id TEXT PRIMARY KEY,
           url TEXT NOT NULL,
           events TEXT NOT NULL,
           secret TEXT NOT NULL,
           status TEXT NOT NULL CHECK (status IN ('enabled', 'disabled')),
           disabled_reason TEXT,
           generation INTEGER NOT NULL,
           version INTEGER NOT NULL,
           created_at_ms INTEGER NOT NULL,
           updated_at_ms INTEGER NOT NULL
         ) STRICT`,
      );
    });
  }

  /**
   * Creates (201) or replaces (200) an endpoint; a PUT always (re-)enables it. The reply carries
   * the secret only when this PUT set it: generated for a new endpoint that sent none, or the one
   * sent. An existing endpoint PUT without a secret keeps its own, so a retried PUT of a creation
   * never changes the secret its first answer showed. `generation` is for waking its object.
   */
  putEndpoint(id: string, input: EndpointInput): Success<{ endpoint: PutEndpointReply; generation: number }> | Failure {
    const verdict = checkWebhookUrl(input.url, urlPolicyOf(this.env.OUTBOUND_URL_POLICY));
    if (!verdict.ok) return failure("invalid_request", `url: ${verdict.reason}`);
    if (input.secret !== undefined) {
      const parsed = parseSecret(input.secret);
      if (!parsed.ok) return failure("invalid_request", `secret: ${parsed.reason}`);
    }
    return this.ctx.storage.transactionSync(() => {
      const nowMs = Date.now();
      const prev = this.row(id);
      if (!prev && this.count() >= MAX_WEBHOOK_ENDPOINTS)
        return failure("invalid_request", `at most ${MAX_WEBHOOK_ENDPOINTS} webhook endpoints; delete one first`);
      const version = this.bumpVersion();
      const secret = input.secret ?? prev?.secret ?? generateSecret();
      const row: EndpointRow = {
        id,
        url: verdict.url,
        events: JSON.stringify(input.events),
        secret,
        status: "enabled",
        disabled_reason: null,
        generation: prev?.generation ?? version,
        version: (prev?.version ?? 0) + 1,
        created_at_ms: prev?.created_at_ms ?? nowMs,
        updated_at_ms: nowMs,
      };
      this.sql.exec(
        `INSERT OR REPLACE INTO endpoints (id, url, events, secret, status, disabled_reason, generation, version,
           created_at_ms, updated_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        row.id,
        row.url,
        row.events,
        row.secret,
        row.status,
        row.disabled_reason,
        row.generation,
        row.version,
        row.created_at_ms,
        row.updated_at_ms,
      );
      const shown = input.secret !== undefined || !prev;
      const endpoint: PutEndpointReply = shown ? { ...view(row), secret } : view(row);
      return { ok: true, status: prev ? 200 : 201, body: { endpoint, generation: row.generation }, replayed: false };
    });
  }

  getEndpoint(id: string): EndpointView | null {
    const row = this.row(id);
    return row ? view(row) : null;
  }

  /** Every endpoint, by id (at most MAX_WEBHOOK_ENDPOINTS). */
  listEndpoints(): EndpointView[] {
    return this.sql.exec<EndpointRow>("SELECT * FROM endpoints ORDER BY id").toArray().map(view);
  }

  /**
   * Removes an endpoint: the generation it had, or null when there was none. Its object drops
   * its queue (told by the route, and in any case at its next run, when it finds no config here).
   */
  deleteEndpoint(id: string): { generation: number } | null {
    return this.ctx.storage.transactionSync(() => {
      const row = this.sql
        .exec<{ generation: number }>("DELETE FROM endpoints WHERE id = ? RETURNING generation", id)
        .toArray()[0];
      if (!row) return null;
      this.bumpVersion();
      return { generation: row.generation };
    });
  }

  /** Which life of the id exists now and whether it is enabled, without the secret; null when none. */
  lifeOf(id: string): { generation: number; status: EndpointStatus } | null {
    const row = this.row(id);
    return row ? { generation: row.generation, status: status(row) } : null;
  }

  /** What the endpoint's object needs to deliver, secret included; null once it is deleted. */
  deliveryConfig(id: string): DeliveryConfig | null {
    const row = this.row(id);
    if (!row) return null;
    return { id: row.id, url: row.url, secret: row.secret, status: status(row), generation: row.generation };
  }

  /** The enabled endpoints and what they listen to, or null when `knownVersion` is still current. */
  subscriptionsIfNewer(knownVersion: number): SubscriptionList | null {
    const version = this.version();
    if (version === knownVersion) return null;
    const endpoints = this.sql
      .exec<EndpointRow>("SELECT * FROM endpoints WHERE status = 'enabled' ORDER BY id")
      .toArray()
      .map((r) => ({ id: r.id, events: events(r), generation: r.generation }));
    return { version, endpoints };
  }

  /**
   * Disables an endpoint whose receiver answered 410 Gone; a PUT enables it again. Only the life
   * of the id that got the 410 (`generation`): a newer endpoint under the same id is left alone.
   */
  disableEndpoint(id: string, generation: number, reason: string): boolean {
    return this.ctx.storage.transactionSync(() => {
      const row = this.row(id);
      if (!row || row.generation !== generation || row.status === "disabled") return false;
      this.bumpVersion();
      this.sql.exec(
        "UPDATE endpoints SET status = 'disabled', disabled_reason = ?, version = version + 1, updated_at_ms = ? WHERE id = ?",
        reason,
        Date.now(),
        id,
      );
      return true;
    });
  }

  private row(id: string): EndpointRow | undefined {
    return this.sql.exec<EndpointRow>("SELECT * FROM endpoints WHERE id = ?", id).toArray()[0];
  }

  private count(): number {
    return this.sql.exec<{ n: number }>("SELECT count(*) AS n FROM endpoints").one().n;
  }

  private version(): number {
    return this.sql.exec<{ value: number }>("SELECT value FROM meta WHERE key = 'version'").toArray()[0]?.value ?? 0;
  }

  /** The next directory version, stored: every change has its own. */
  private bumpVersion(): number {
    return this.sql
      .exec<{ value: number }>(
        `INSERT INTO meta (key, value) VALUES ('version', 1)
         ON CONFLICT (key) DO UPDATE SET value = value + 1 RETURNING value`,
      )
      .one().value;
  }
}

function status(row: EndpointRow): EndpointStatus {
  return row.status === "disabled" ? "disabled" : "enabled";
}

function events(row: EndpointRow): EventSelector[] {
  return JSON.parse(row.events) as EventSelector[];
}

function view(row: EndpointRow): EndpointView {
  return {
    id: row.id,
    url: row.url,
    events: events(row),
    status: status(row),
    disabledReason: row.disabled_reason,
    secretPrefix: secretPrefix(row.secret),
    version: row.version,
    createdAt: iso(row.created_at_ms),
    updatedAt: iso(row.updated_at_ms),
  };
}
