// The bench's peer: POST /v1/teams/{teamId}/spends {feature, amount} on Node and PostgreSQL, the
// spend of bench/peer/ledger.mjs behind a plain node:http server, for `npm run bench` to measure
// beside ours. What the worker does before its ledger call, it does too: bearer authentication
// (SHA-256 digests compared in constant time), a bounded body, a strict shape check, the request
// fingerprint (SHA-256 of method, path and body, as src/client/ledger-client.ts). One process
// (our worker is one workerd process), a pg Pool of PEER_POOL_SIZE connections (default 10, the
// bench's connections); PostgreSQL itself runs one backend process per connection.
//
// startPeerServer() runs it in a child process (`node bench/peer/server.mjs serve <options>`), so
// it shares no event loop with the load generator, and stops it when this process exits.
import { spawn } from "node:child_process";
import { createHash, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { freePort } from "../../scripts/free-port.mjs";
import { problem, spend } from "./ledger.mjs";

const MAX_BODY_BYTES = 64 * 1024;
const MAX_AMOUNT_CREDITS = 1_000_000_000_000; // as src/limits.ts
const FEATURE = /^[A-Za-z0-9._:/-]{1,64}$/;
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;
const BEARER = /^Bearer ([\x21-\x7e]{1,512})$/i;
const SPENDS = /^\/v1\/teams\/([A-Za-z0-9._-]{1,64})\/spends$/;

/**
 * What the serving child needs, passed to it as JSON on its command line.
 * @typedef {object} PeerOptions
 * @property {number} port
 * @property {string} adminKey
 * @property {import("pg").PoolConfig} database
 * @property {number} poolSize
 * @property {boolean} pipeline pg's pipeline mode (ledger.mjs spend: two round trips, not five)
 */

/** @param {string} text */
const digest = (text) => createHash("sha256").update(text, "utf8").digest();

/**
 * The request handler over `pool`.
 * @param {import("pg").Pool} pool
 * @param {string} adminKey
 * @param {boolean} pipelined
 * @returns {import("node:http").RequestListener}
 */
function handler(pool, adminKey, pipelined) {
  const expected = digest(adminKey);
  return function peerRequest(req, res) {
    /**
     * @param {number} status
     * @param {string} body JSON text
     * @param {Record<string, string>} [headers]
     */
    const reply = (status, body, headers = {}) => {
      res.writeHead(status, {
        "content-type": status >= 400 ? "application/problem+json" : "application/json",
        "content-length": Buffer.byteLength(body),
        ...headers,
      });
      res.end(body);
    };
    if (req.method === "GET" && req.url === "/healthz") return reply(200, '{"ok":true}');
    const path = (req.url ?? "").split("?")[0] ?? "";
    const team = SPENDS.exec(path);
    if (!team?.[1]) return reply(404, problem(404, "not_found", "no such route"));
    if (req.method !== "POST") return reply(405, problem(405, "method_not_allowed", "POST only"));
    const given = BEARER.exec(req.headers.authorization ?? "")?.[1];
    if (!given || !timingSafeEqual(digest(given), expected))
      return reply(401, problem(401, "unauthorized", "the API key is not valid"));
    const key = req.headers["idempotency-key"];
    if (typeof key !== "string" || !IDEMPOTENCY_KEY.test(key))
      return reply(400, problem(400, "invalid_request", "the Idempotency-Key header is required"));
    const teamId = team[1];
    /** @type {Buffer[]} */
    const chunks = [];
    let size = 0;
    req.on("data", (/** @type {Buffer} */ chunk) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on("end", () => {
      if (size > MAX_BODY_BYTES) return reply(413, problem(413, "payload_too_large", "at most 64 KiB"));
      const text = Buffer.concat(chunks).toString("utf8");
      /** @type {unknown} */
      let body;
      try {
        body = JSON.parse(text);
      } catch {
        return reply(400, problem(400, "invalid_request", "the body is not JSON"));
      }
      const shapeError = checkSpendBody(body);
      if (shapeError) return reply(400, problem(400, "invalid_request", shapeError));
      const { feature, amount } = /** @type {{ feature: string, amount: number }} */ (body);
      const fingerprint = digest(`POST ${path}\n${JSON.stringify(body)}`).toString("hex");
      spend(pool, { teamId, feature, amount, key, fingerprint }, pipelined).then(
        (out) => reply(out.status, out.body, out.replayed ? { "idempotent-replayed": "true" } : {}),
        (err) => {
          console.error("peer spend failed:", err);
          reply(500, problem(500, "internal", "the spend failed"));
        },
      );
    });
  };
}

/**
 * Why a spend body is refused, or null: exactly {feature, amount}, a feature as ours accepts it
 * and a whole amount from 1 to 10^12 credits (the peer has no price book).
 * @param {unknown} body
 * @returns {string | null}
 */
function checkSpendBody(body) {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return "the body must be a JSON object";
  for (const k of Object.keys(body)) if (k !== "feature" && k !== "amount") return `unknown field ${k}`;
  const { feature, amount } = /** @type {{ feature?: unknown, amount?: unknown }} */ (body);
  if (typeof feature !== "string" || !FEATURE.test(feature)) return "feature: 1-64 of A-Z a-z 0-9 . _ : / -";
  if (typeof amount !== "number" || !Number.isSafeInteger(amount) || amount < 1 || amount > MAX_AMOUNT_CREDITS)
    return `amount: a whole number of credits from 1 to ${MAX_AMOUNT_CREDITS}`;
  return null;
}

/**
 * Starts the peer in a child process on a free port and waits for GET /healthz. Returns its base
 * URL and a stop function (also run when this process exits).
 * @param {{ adminKey: string, database: import("pg").PoolConfig, poolSize?: number, pipeline?: boolean }} options
 * @returns {Promise<{ base: string, stop: () => Promise<void> }>}
 */
export async function startPeerServer({ adminKey, database, poolSize = 10, pipeline = false }) {
  const port = await freePort();
  /** @type {PeerOptions} */
  const options = { port, adminKey, database, poolSize, pipeline };
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), "serve", JSON.stringify(options)], {
    stdio: ["ignore", "ignore", "inherit"],
    detached: true,
  });
  /** @type {Promise<void>} */
  const exited = new Promise((resolve) => child.once("exit", () => resolve()));
  let stopped = false;
  /** Sends SIGTERM (the child closes its pool and exits); resolves once it has exited. */
  const stop = () => {
    if (!stopped) {
      stopped = true;
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(child.pid, "SIGTERM");
        } catch {}
      }
    }
    return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : exited;
  };
  process.on("exit", stop);
  const base = `http://127.0.0.1:${port}`;
  const startedAt = Date.now();
  for (;;) {
    if (child.exitCode !== null) throw new Error("the peer exited while starting");
    try {
      const r = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(2_000) });
      if (r.ok) return { base, stop };
    } catch {}
    if (Date.now() - startedAt > 30_000) {
      stop();
      throw new Error(`the peer did not answer ${base}/healthz`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

// `node bench/peer/server.mjs serve <options as JSON>`: the child that serves until it is signalled.
if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === "serve") {
  /** @type {PeerOptions} */
  const options = JSON.parse(process.argv[3] ?? "{}");
  const pool = new pg.Pool({ ...options.database, max: options.poolSize, pipeline: options.pipeline });
  pool.on("error", (err) => console.error("peer pool:", err.message));
  const server = createServer({ keepAlive: true }, handler(pool, options.adminKey, options.pipeline));
  server.keepAliveTimeout = 60_000;
  server.listen(options.port, "127.0.0.1");
  const shutdown = () => {
    server.close();
    server.closeAllConnections();
    pool.end().finally(() => process.exit(0));
  };
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
}
