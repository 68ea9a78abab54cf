/**
 * ApiKeyDirectory: the account's API keys, in one SQLite-backed Durable Object (named "account").
 * It is the single writer of the keys and gives them one version number that grows with every
 * change, so the worker's copies (keys/key-copy.ts, one per isolate) ask only for what is newer.
 * Only digests of secrets are stored. Written when keys are made or revoked; read by copies,
 * never on the spend path itself.
 */
import { DurableObject } from "cloudflare:workers";
import { type Failure, failure } from "../domain/failure";
import type { Success } from "../domain/vocabulary";
import { IDEMPOTENCY_RETENTION_SECONDS, MAX_API_KEYS } from "../limits";
import { type KeyRecord, newApiKey, type Scope, secretDigest } from "./api-key";
import { openReply, replyIndex, sealReply } from "./sealed-reply";

export const KEY_DIRECTORY_NAME = "account";

export interface ApiKeyInput {
  name: string;
  scopes: Scope[];
  teamId: string | null;
  expiresAtMs: number | null;
  spendLimitCreditsPerMonth: number | null;
}

/** A key as it is listed: never its secret nor its digest. */
export interface ApiKeyListing {
  id: string;
  name: string;
  /** The key's first characters, to tell keys apart: `ck_<id>`. */
  prefix: string;
  scopes: Scope[];
  teamId: string | null;
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  spendLimitCreditsPerMonth: number | null;
}

export interface KeySnapshot {
  version: number;
  keys: KeyRecord[];
}

interface Row extends Record<string, SqlStorageValue> {
  id: string;
  name: string;
  scopes: string;
  team_id: string | null;
  secret_digest: string;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
  last_used_at: number | null;
  spend_limit_credits: number | null;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

function listing(r: Row): ApiKeyListing {
  return {
    id: r.id,
    name: r.name,
    prefix: `ck_${r.id}`,
    scopes: JSON.parse(r.scopes) as Scope[],
    teamId: r.team_id,
    createdAt: new Date(r.created_at).toISOString(),
    expiresAt: iso(r.expires_at),
    lastUsedAt: iso(r.last_used_at),
    spendLimitCreditsPerMonth: r.spend_limit_credits,
  };
}

export class ApiKeyDirectory extends DurableObject<Cloudflare.Env> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Cloudflare.Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    ctx.storage.transactionSync(() => {
      this.sql.exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)");
      this.sql.exec(`CREATE TABLE IF NOT EXISTS keys (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        scopes TEXT NOT NULL,
        team_id TEXT,
        secret_digest TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER,
        revoked_at INTEGER,
        last_used_at INTEGER
      )`);
      // Directories made before keys had their own spend limit.
      const columns = this.sql.exec<{ name: string }>("PRAGMA table_info(keys)").toArray();
      if (!columns.some((c) => c.name === "spend_limit_credits"))
        this.sql.exec("ALTER TABLE keys ADD COLUMN spend_limit_credits INTEGER");
      // Keyed creations, answered again (sealed-reply.ts): never the Idempotency-Key nor the secret in clear.
      this.sql.exec(`CREATE TABLE IF NOT EXISTS replies (
        idx TEXT PRIMARY KEY,
        fingerprint TEXT NOT NULL,
        iv TEXT NOT NULL,
        sealed TEXT NOT NULL,
        created_at INTEGER NOT NULL
      )`);
    });
  }

  private version(): number {
    return this.sql.exec<{ value: number }>("SELECT value FROM meta WHERE key = 'version'").toArray()[0]?.value ?? 0;
  }

  private bump(): void {
    this.sql.exec(
      "INSERT INTO meta (key, value) VALUES ('version', 1) ON CONFLICT (key) DO UPDATE SET value = value + 1",
    );
  }

  /**
   * Makes a key; the secret is in this reply and, sealed, in the replay record of a keyed request
   * (sealed-reply.ts). With an Idempotency-Key, the same key and request answer the first reply
   * again, byte for byte; the same key for another request is 422 idempotency_key_reused.
   */
  async create(
    input: ApiKeyInput,
    idem: { key: string; fingerprint: string } | null,
  ): Promise<Success<{ text: string; replayed: boolean }> | Failure> {
    const nowMs = Date.now();
    const idx = idem ? await replyIndex(idem.key) : null;
    if (idem && idx) {
      this.sql.exec("DELETE FROM replies WHERE created_at < ?", nowMs - IDEMPOTENCY_RETENTION_SECONDS * 1000);
      const seen = this.sql
        .exec<{ fingerprint: string; iv: string; sealed: string }>("SELECT * FROM replies WHERE idx = ?", idx)
        .toArray()[0];
      if (seen) {
        if (seen.fingerprint !== idem.fingerprint)
          return failure("idempotency_key_reused", "this Idempotency-Key was used for another request");
        const text = await openReply(idem.key, seen.iv, seen.sealed);
        return { ok: true, status: 201, replayed: true, body: { text, replayed: true } };
      }
    }
    const made = newApiKey();
    const digest = await secretDigest(made.secret);
    const row: Row = {
      id: made.id,
      name: input.name,
      scopes: JSON.stringify(input.scopes),
      team_id: input.teamId,
      secret_digest: digest,
      created_at: nowMs,
      expires_at: input.expiresAtMs,
      revoked_at: null,
      last_used_at: null,
      spend_limit_credits: input.spendLimitCreditsPerMonth,
    };
    const text = JSON.stringify({ ...listing(row), key: made.key });
    const sealed = idem ? await sealReply(idem.key, text) : null;
    // Nothing awaited from here: a parallel request with the same key either finds the record or
    // writes it first, in this one synchronous transaction.
    return this.ctx.storage.transactionSync(() => {
      if (idem && idx) {
        const raced = this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM replies WHERE idx = ?", idx).one().n;
        if (raced > 0) return failure("conflict", "a request with this Idempotency-Key is being answered: retry it");
      }
      const live = this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM keys WHERE revoked_at IS NULL").one().n;
      if (live >= MAX_API_KEYS)
        return failure("conflict", `the account holds ${MAX_API_KEYS} keys, the most it may: revoke one first`);
      this.sql.exec(
        `INSERT INTO keys (id, name, scopes, team_id, secret_digest, created_at, expires_at, spend_limit_credits)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        row.id,
        row.name,
        row.scopes,
        row.team_id,
        row.secret_digest,
        row.created_at,
        row.expires_at,
        row.spend_limit_credits,
      );
      if (idem && idx && sealed)
        this.sql.exec(
          "INSERT INTO replies (idx, fingerprint, iv, sealed, created_at) VALUES (?, ?, ?, ?, ?)",
          idx,
          idem.fingerprint,
          sealed.iv,
          sealed.sealed,
          nowMs,
        );
      this.bump();
      return { ok: true as const, status: 201 as const, replayed: false, body: { text, replayed: false } };
    });
  }

  /** A page of the keys not revoked, newest first; `after` is the last key of the page before. */
  list(limit: number, after: { createdAtMs: number; id: string } | null): { keys: ApiKeyListing[]; more: boolean } {
    const rows = after
      ? this.sql
          .exec<Row>(
            `SELECT * FROM keys WHERE revoked_at IS NULL AND (created_at < ? OR (created_at = ? AND id > ?))
             ORDER BY created_at DESC, id LIMIT ?`,
            after.createdAtMs,
            after.createdAtMs,
            after.id,
            limit + 1,
          )
          .toArray()
      : this.sql
          .exec<Row>("SELECT * FROM keys WHERE revoked_at IS NULL ORDER BY created_at DESC, id LIMIT ?", limit + 1)
          .toArray();
    return { keys: rows.slice(0, limit).map(listing), more: rows.length > limit };
  }

  /** The team a key is bound to (null: none), or null when there is no such key not yet revoked. */
  boundTeam(id: string): { teamId: string | null } | null {
    const row = this.sql
      .exec<{ team_id: string | null }>("SELECT team_id FROM keys WHERE id = ? AND revoked_at IS NULL", id)
      .toArray()[0];
    return row ? { teamId: row.team_id } : null;
  }

  /** Revokes a key once; a key already revoked, or never made, is not found. */
  revoke(id: string): Success<{ id: string; revokedAt: string }> | Failure {
    const nowMs = Date.now();
    return this.ctx.storage.transactionSync(() => {
      const changed = this.sql
        .exec("UPDATE keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL RETURNING id", nowMs, id)
        .toArray().length;
      if (changed === 0) return failure("not_found", `no API key ${id}`);
      this.bump();
      return {
        ok: true as const,
        status: 200,
        replayed: false,
        body: { id, revokedAt: new Date(nowMs).toISOString() },
      };
    });
  }

  /** Every key that can still be checked (revoked ones too, so a copy learns of the revocation). */
  snapshotIfNewer(version: number): KeySnapshot | null {
    const current = this.version();
    if (current === version) return null;
    const keys = this.sql
      .exec<Row>("SELECT * FROM keys")
      .toArray()
      .map(
        (r): KeyRecord => ({
          id: r.id,
          scopes: JSON.parse(r.scopes) as Scope[],
          teamId: r.team_id,
          secretDigest: r.secret_digest,
          expiresAtMs: r.expires_at,
          revokedAtMs: r.revoked_at,
          spendLimitCreditsPerMonth: r.spend_limit_credits,
        }),
      );
    return { version: current, keys };
  }

  /** Records that a key was used (at a coarse resolution: the worker calls this off the request's path). */
  touch(id: string, atMs: number): void {
    this.sql.exec(
      "UPDATE keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
      atMs,
      id,
      atMs,
    );
  }
}

export function keyDirectoryStub(env: Cloudflare.Env) {
  return env.API_KEYS.get(env.API_KEYS.idFromName(KEY_DIRECTORY_NAME));
}
