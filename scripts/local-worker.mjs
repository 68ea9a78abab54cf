// Starts the worker locally on 127.0.0.1 with a fresh temporary state (D1 migrations applied, the
// admin key bound), for the bench, the profiler and the soak. The server and its state are removed
// when this process exits, however it exits.
//
// Two runtimes, the same workerd underneath:
// - "miniflare" (default): the worker bundled by `wrangler deploy --dry-run` and served by one
//   workerd process through Miniflare's API. Requests reach the worker directly.
// - "wrangler": `wrangler dev`, which puts a second workerd process (its dev proxy) in front of the
//   worker: one more HTTP hop a request, which the bench would otherwise count as ours.
// LOCAL_RUNTIME=wrangler picks the second; LOCAL_PERSIST_DIR puts the state elsewhere than the OS
// temp folder (e.g. /dev/shm to take the disk's fsync out of a measurement).
// Either way the runtime is managed by a child process (`node scripts/local-worker.mjs serve`), so
// a load generator calling startLocalWorker shares no event loop with it.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Miniflare } from "miniflare";
import { freePort } from "./free-port.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const WRANGLER = join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");

/**
 * What the serving child needs; passed to it as JSON on its command line.
 * @typedef {object} RuntimeOptions
 * @property {number} port
 * @property {string} adminKey
 * @property {number | undefined} inspectorPort
 * @property {string} persist the temporary state folder
 * @property {NodeJS.ProcessEnv} env
 */

function wranglerToml() {
  return readFileSync(join(ROOT, "wrangler.toml"), "utf8");
}

/**
 * @param {string} key
 * @param {string} fallback
 * @returns {string}
 */
function tomlString(key, fallback) {
  return new RegExp(`^\\s*${key}\\s*=\\s*"([^"]+)"`, "m").exec(wranglerToml())?.[1] ?? fallback;
}

/**
 * The Durable Object bindings of wrangler.toml (every one is SQLite-backed), so the local worker
 * has the same objects as `wrangler dev` without a second list to keep in step.
 * @param {string} toml
 * @returns {Record<string, { className: string, useSQLite: true }>}
 */
function durableObjectsOf(toml) {
  /** @type {Record<string, { className: string, useSQLite: true }>} */
  const out = {};
  for (const m of toml.matchAll(
    /\[\[durable_objects\.bindings\]\]\s*name\s*=\s*"([^"]+)"\s*class_name\s*=\s*"([^"]+)"/g,
  ))
    out[m[1] ?? ""] = { className: m[2] ?? "", useSQLite: true };
  if (!out.TEAM_LEDGER) throw new Error("wrangler.toml declares no TEAM_LEDGER binding");
  return out;
}

/**
 * The queues of wrangler.toml (producers and consumers, with their batch and retry settings), so
 * the local worker's history goes through a queue as in `wrangler dev` and in production.
 * @param {string} toml
 */
function queuesOf(toml) {
  /** @type {Record<string, string>} */
  const queueProducers = {};
  for (const m of toml.matchAll(/\[\[queues\.producers\]\]\s*binding\s*=\s*"([^"]+)"\s*queue\s*=\s*"([^"]+)"/g))
    queueProducers[m[1] ?? ""] = m[2] ?? "";
  /** @type {Record<string, Record<string, string | number>>} */
  const queueConsumers = {};
  const names = {
    max_batch_size: "maxBatchSize",
    max_batch_timeout: "maxBatchTimeout",
    max_retries: "maxRetries",
    retry_delay: "retryDelay",
    dead_letter_queue: "deadLetterQueue",
  };
  for (const block of toml.split("[[queues.consumers]]").slice(1)) {
    const body = block.split(/\n\s*\[/)[0] ?? "";
    const queue = /^\s*queue\s*=\s*"([^"]+)"/m.exec(body)?.[1];
    if (!queue) continue;
    /** @type {Record<string, string | number>} */
    const consumer = {};
    for (const [key, name] of Object.entries(names)) {
      const v = new RegExp(`^\\s*${key}\\s*=\\s*("([^"]+)"|[0-9.]+)`, "m").exec(body);
      if (v) consumer[name] = v[2] ?? Number(v[1]);
    }
    queueConsumers[queue] = consumer;
  }
  return { queueProducers, queueConsumers };
}

/** The migrations' statements in order, split where drizzle-kit marks a statement break. */
function migrationStatements() {
  const dir = join(ROOT, tomlString("migrations_dir", "migrations"));
  return readdirSync(dir)
    .filter((f) => f.endsWith(".sql"))
    .sort()
    .flatMap((f) => readFileSync(join(dir, f), "utf8").split("--> statement-breakpoint"))
    .map((s) => s.trim())
    .filter(Boolean);
}

/**
 * @param {string} base
 * @param {number} startTimeoutMs
 * @param {() => boolean} exited
 */
async function waitHealthy(base, startTimeoutMs, exited) {
  const startedAt = Date.now();
  while (Date.now() - startedAt < startTimeoutMs) {
    if (exited()) throw new Error("the local runtime exited while starting");
    try {
      const r = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(2_000) });
      if (r.ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`the worker did not answer ${base}/healthz within ${startTimeoutMs / 1000} s`);
}

/** @param {RuntimeOptions} options */
async function startMiniflare({ port, adminKey, inspectorPort, persist, env }) {
  const outdir = join(persist, "bundle");
  const build = spawnSync(process.execPath, [WRANGLER, "deploy", "--dry-run", "--outdir", outdir], {
    cwd: ROOT,
    env,
    encoding: "utf8",
    timeout: 120_000,
  });
  if (build.status !== 0) throw new Error(`bundling failed: ${build.stderr || build.stdout}`);
  const flags = /^\s*compatibility_flags\s*=\s*\[([^\]]*)\]/m.exec(wranglerToml())?.[1] ?? "";
  const mf = new Miniflare({
    scriptPath: join(outdir, "index.js"),
    modules: true,
    modulesRoot: outdir,
    compatibilityDate: tomlString("compatibility_date", "2026-04-20"),
    compatibilityFlags: [...flags.matchAll(/"([^"]+)"/g)].map((m) => m[1]),
    durableObjects: durableObjectsOf(wranglerToml()),
    d1Databases: { DB: tomlString("database_id", "local") },
    ...queuesOf(wranglerToml()),
    bindings: {
      ADMIN_API_KEY: adminKey,
      OUTBOUND_URL_POLICY: "local",
      DO_JURISDICTIONS: "local",
      // HISTORY_DELIVERY=direct: the objects write D1 themselves (the bench's comparison).
      ...(env.HISTORY_DELIVERY ? { HISTORY_DELIVERY: env.HISTORY_DELIVERY } : {}),
    },
    defaultPersistRoot: join(persist, "state"),
    host: "127.0.0.1",
    port,
    inspectorPort,
  });
  await mf.ready;
  const db = await mf.getD1Database("DB");
  for (const statement of migrationStatements()) await db.prepare(statement).run();
  // The worker answers /healthz before the migrations above are applied: the parent waits for this
  // file too, so no request (nor a queue consumer's landing) meets D1 without its tables.
  writeFileSync(join(persist, "migrated"), "");
  return mf;
}

/** @param {RuntimeOptions} options */
function startWrangler({ port, adminKey, inspectorPort, persist, env }) {
  const migrate = spawnSync(
    process.execPath,
    [
      WRANGLER,
      "d1",
      "migrations",
      "apply",
      tomlString("database_name", "credits-ledger"),
      "--local",
      "--persist-to",
      persist,
    ],
    { cwd: ROOT, env, encoding: "utf8", timeout: 120_000 },
  );
  if (migrate.status !== 0) throw new Error(`migrations failed: ${migrate.stderr || migrate.stdout}`);
  const args = ["dev", "--ip", "127.0.0.1", "--port", String(port), "--persist-to", persist];
  if (inspectorPort !== undefined) args.push("--inspector-port", String(inspectorPort));
  args.push("--var", `ADMIN_API_KEY:${adminKey}`, "--log-level", "error", "--show-interactive-dev-session=false");
  if (env.HISTORY_DELIVERY) args.push("--var", `HISTORY_DELIVERY:${env.HISTORY_DELIVERY}`);
  return spawn(process.execPath, [WRANGLER, ...args], {
    cwd: ROOT,
    env,
    stdio: ["ignore", "ignore", "inherit"],
    detached: true,
  });
}

/**
 * Starts the worker in a child process and waits for GET /healthz. Returns its base URL, the
 * runtime's name and a stop function (also run on process exit). Options: port (default: a free
 * one), adminKey, inspectorPort, tag (names the temporary state folder), startTimeoutMs, runtime.
 * @param {object} options
 * @param {number} [options.port]
 * @param {string} options.adminKey
 * @param {number} [options.inspectorPort]
 * @param {string} [options.tag]
 * @param {number} [options.startTimeoutMs]
 * @param {string} [options.runtime] "miniflare" or "wrangler"
 * @returns {Promise<{ base: string, stop: () => void, persist: string, runtime: string }>}
 */

export async function startLocalWorker({
  port,
  adminKey,
  inspectorPort,
  tag = "worker",
  startTimeoutMs = 90_000,
  runtime = process.env.LOCAL_RUNTIME ?? "miniflare",
}) {
  if (runtime !== "miniflare" && runtime !== "wrangler") throw new Error(`unknown runtime ${runtime}`);
  const listenPort = port ?? (await freePort());
  const base = `http://127.0.0.1:${listenPort}`;
  const persist = mkdtempSync(join(process.env.LOCAL_PERSIST_DIR ?? tmpdir(), `credits-${tag}-`));
  const env = { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false" };
  /** @type {RuntimeOptions} */
  const options = { port: listenPort, adminKey, inspectorPort, persist, env };
  const child =
    runtime === "miniflare"
      ? spawn(process.execPath, [fileURLToPath(import.meta.url), "serve", JSON.stringify(options)], {
          cwd: ROOT,
          env,
          stdio: ["ignore", "ignore", "inherit"],
          detached: true,
        })
      : startWrangler(options);
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid, "SIGTERM"); // its process group: the manager and its workerd
      } catch {}
    }
    rmSync(persist, { recursive: true, force: true });
  };
  process.on("exit", stop);
  await waitHealthy(base, startTimeoutMs, () => child.exitCode !== null);
  if (runtime === "miniflare") {
    const until = Date.now() + startTimeoutMs;
    while (!existsSync(join(persist, "migrated"))) {
      if (child.exitCode !== null || Date.now() > until) throw new Error("the D1 migrations were not applied");
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return { base, stop, persist, runtime };
}

// `node scripts/local-worker.mjs serve <options as JSON>`: the child that runs Miniflare until it
// is signalled.
if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === "serve") {
  /** @type {RuntimeOptions} */
  const options = JSON.parse(process.argv[3] ?? "{}");
  const mf = await startMiniflare(options);
  const shutdown = () => mf.dispose().finally(() => process.exit(0));
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
}
