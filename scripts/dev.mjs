// `npm run dev`: the worker on http://127.0.0.1:8787 (PORT overrides the port) with local D1 and
// Durable Objects, ready to use from a fresh clone after `npm ci`:
//   1. copies .dev.vars.example to .dev.vars when .dev.vars is missing;
//   2. applies the D1 migrations to the local database (never prompts);
//   3. starts `wrangler dev` and waits for GET /healthz;
//   4. seeds the price book and plans (scripts/seed-catalog.mjs) and the team `demo` with 1000
//      paid credits, idempotently (re-runs add nothing);
//   5. prints the URLs, then runs until Ctrl-C, forwarding SIGINT/SIGTERM/SIGHUP to wrangler and
//      exiting with its exit code.
import { spawn } from "node:child_process";
import { copyFileSync, existsSync, readFileSync } from "node:fs";
import { constants } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { portIsFree } from "./free-port.mjs";
import { FEATURES, PLANS } from "./seed-catalog.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const HOST = "127.0.0.1";
const PORT = Number(process.env.PORT ?? 8787);
const BASE = `http://${HOST}:${PORT}`;
const WRANGLER = join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");
const DEV_VARS = join(ROOT, ".dev.vars");
const DEV_VARS_EXAMPLE = join(ROOT, ".dev.vars.example");
const KEY_NAME = "ADMIN_API_KEY";
const HEALTH_NOTICE_MS = 30_000;
const STOP_GRACE_MS = 10_000;

const DEMO_TEAM = "demo";
const DEMO_GRANT_KEY = "seed-demo-grant";
// Fixed forever: the same Idempotency-Key with another body would be refused with 422.
const DEMO_GRANT = { amount: 1000, category: "paid", source: "manual", reference: "npm run dev seed" };

/** @param {string} message */
const log = (message) => console.log(`[dev] ${message}`);

/**
 * @param {string} message
 * @returns {never}
 */
function fail(message) {
  console.error(`[dev] ${message}`);
  process.exit(1);
}

/**
 * KEY=VALUE lines as wrangler reads them (dotenv): comments and blank lines skipped, quotes removed.
 * @param {string} file
 * @returns {Record<string, string>}
 */
function readDevVars(file) {
  /** @type {Record<string, string>} */
  const vars = {};
  for (const raw of readFileSync(file, "utf8").split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const match = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!match) continue;
    let value = match[2].trim();
    const quoted = /^(["'`])(.*)\1$/.exec(value);
    if (quoted) value = quoted[2];
    else value = value.replace(/\s+#.*$/, "");
    vars[match[1]] = value;
  }
  return vars;
}

/** The D1 database name from wrangler.toml, so a rename there needs no edit here. */
/** Every D1 database of wrangler.toml (the account's history, and each jurisdiction's). */
function databaseNames() {
  const toml = readFileSync(join(ROOT, "wrangler.toml"), "utf8");
  const names = [...toml.matchAll(/^\s*database_name\s*=\s*"([^"]+)"/gm)].map((m) => m[1] ?? "");
  return names.length > 0 ? names : ["credits-ledger"];
}

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- the child process and signals ---------------------------------------------------------

/**
 * The wrangler process running now (migrations, then dev); signals go to it.
 * @type {import("node:child_process").ChildProcess | null}
 */
let child = null;
let stopping = false;

/**
 * @param {number | null} code
 * @param {NodeJS.Signals | null} signal
 * @returns {number}
 */
function exitCodeOf(code, signal) {
  if (code !== null) return code;
  return signal ? 128 + (constants.signals[signal] ?? 0) : 1;
}

/** @param {NodeJS.Signals} signal */
function stop(signal) {
  if (!child) process.exit(exitCodeOf(null, signal));
  if (stopping) return;
  stopping = true;
  child.kill(signal);
  // Wrangler stops its workerd within a second or two; never hang on it.
  setTimeout(() => child?.kill("SIGKILL"), STOP_GRACE_MS).unref();
}

for (const signal of /** @type {const} */ (["SIGINT", "SIGTERM", "SIGHUP"])) process.on(signal, () => stop(signal));

// `npm run dev` runs this through `sh -c`: a signal sent to npm alone reaches the shell, not us,
// and would leave the server running. Under npm (or the walkthrough), stop when the parent goes.
const parentPid = process.ppid;
if (process.env.npm_lifecycle_event === "dev" || process.env.CREDITS_DEV_EXIT_WITH_PARENT === "1") {
  setInterval(() => {
    if (process.ppid !== parentPid) stop("SIGTERM");
  }, 1_000).unref();
}

/**
 * @typedef {object} Run
 * @property {import("node:child_process").ChildProcess} proc
 * @property {Promise<{ code: number, output: string }>} done resolves when wrangler exits
 */

/**
 * @param {string[]} args
 * @param {{ env?: NodeJS.ProcessEnv, capture?: boolean }} [options] capture: collect stdout and
 *   stderr into `output` instead of passing them through
 * @returns {Run}
 */
function runWrangler(args, { env = {}, capture = false } = {}) {
  const proc = spawn(process.execPath, [WRANGLER, ...args], {
    cwd: ROOT,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", ...env },
    stdio: capture ? ["ignore", "pipe", "pipe"] : ["inherit", "inherit", "inherit"],
  });
  child = proc;
  let output = "";
  if (capture) {
    proc.stdout?.on("data", (d) => {
      output += d;
    });
    proc.stderr?.on("data", (d) => {
      output += d;
    });
  }
  /** @type {Run["done"]} */
  const done = new Promise((resolve) => {
    proc.on("exit", (code, signal) => {
      if (child === proc) child = null;
      resolve({ code: exitCodeOf(code, signal), output });
    });
  });
  return { proc, done };
}

// ---- steps -----------------------------------------------------------------------------------

function ensureDevVars() {
  if (!existsSync(DEV_VARS)) {
    copyFileSync(DEV_VARS_EXAMPLE, DEV_VARS);
    log("created .dev.vars from .dev.vars.example");
  }
  const key = readDevVars(DEV_VARS)[KEY_NAME];
  if (!key) fail(`.dev.vars has no ${KEY_NAME}=…; add one (see .dev.vars.example)`);
  return key;
}

async function applyMigrations() {
  for (const db of databaseNames()) await applyMigrationsTo(db);
}

/** @param {string} db */
async function applyMigrationsTo(db) {
  // CI=true and no TTY: wrangler takes the default answer instead of asking to confirm.
  const { done } = runWrangler(["d1", "migrations", "apply", db, "--local"], { env: { CI: "true" }, capture: true });
  const { code, output } = await done;
  if (stopping) process.exit(code);
  if (code !== 0) {
    process.stderr.write(output);
    fail(`applying the D1 migrations to the local database "${db}" failed (exit ${code})`);
  }
  const applied = /No migrations to apply/.test(output) ? 0 : (output.match(/✅/g) ?? []).length;
  log(applied > 0 ? `local D1 "${db}": ${applied} migration(s) applied` : `local D1 "${db}": migrations up to date`);
}

/**
 * Polls GET /healthz until it answers 200. Resolves false if wrangler exits or we are stopping.
 * It does not give up: a build error leaves wrangler waiting for a fix, and this waits with it.
 * @param {Run} dev
 */
async function waitForHealth(dev) {
  const noticeAt = Date.now() + HEALTH_NOTICE_MS;
  let noticed = false;
  let exited = false;
  dev.done.then(() => {
    exited = true;
  });
  while (!exited && !stopping) {
    try {
      const res = await fetch(`${BASE}/healthz`, { signal: AbortSignal.timeout(2_000) });
      if (res.ok) return true;
    } catch {
      // not listening yet
    }
    if (!noticed && Date.now() > noticeAt) {
      noticed = true;
      log(`still waiting for ${BASE}/healthz; if wrangler printed a build error above, fix it and it reloads`);
    }
    await sleep(250);
  }
  return false;
}

/**
 * @param {string} method
 * @param {string} path
 * @param {string} adminKey
 * @param {unknown} body
 * @param {Record<string, string>} [headers]
 */
async function api(method, path, adminKey, body, headers = {}) {
  const res = await fetch(`${BASE}${path}`, {
    method,
    headers: { authorization: `Bearer ${adminKey}`, "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  /** @type {unknown} the reply as parsed, null when it is not JSON */
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON; reported below with the status
  }
  return { status: res.status, replayed: res.headers.get("idempotent-replayed") === "true", json, text };
}

/** The demo team and its grant. Both requests are safe to repeat; the grant is added once. */
/**
 * @param {string} adminKey
 * @returns {Promise<string | null>} what went wrong, or null
 */
async function seedDemo(adminKey) {
  for (const [key, body] of FEATURES) {
    const r = await api("PUT", `/v1/features/${key}`, adminKey, body);
    if (r.status !== 200 && r.status !== 201)
      return `PUT /v1/features/${key} answered ${r.status}: ${r.text.slice(0, 300)}`;
  }
  for (const [id, body] of PLANS) {
    const r = await api("PUT", `/v1/plans/${id}`, adminKey, body);
    if (r.status !== 200 && r.status !== 201)
      return `PUT /v1/plans/${id} answered ${r.status}: ${r.text.slice(0, 300)}`;
  }
  log(`price book: ${FEATURES.length} features, ${PLANS.length} plans (scripts/seed-catalog.mjs)`);
  const team = await api("PUT", `/v1/teams/${DEMO_TEAM}`, adminKey, { name: "Demo team" });
  if (team.status !== 200 && team.status !== 201)
    return `PUT /v1/teams/${DEMO_TEAM} answered ${team.status}: ${team.text.slice(0, 300)}`;
  const grant = await api("POST", `/v1/teams/${DEMO_TEAM}/grants`, adminKey, DEMO_GRANT, {
    "idempotency-key": DEMO_GRANT_KEY,
  });
  if (grant.status !== 201)
    return `POST /v1/teams/${DEMO_TEAM}/grants answered ${grant.status}: ${grant.text.slice(0, 300)}`;
  const reply = /** @type {{ balance?: { available?: number } } | null} */ (grant.json);
  const available = grant.replayed ? null : reply?.balance?.available;
  log(
    grant.replayed
      ? `demo team "${DEMO_TEAM}" already seeded`
      : `seeded team "${DEMO_TEAM}" with ${DEMO_GRANT.amount} paid credits (available: ${available})`,
  );
  return null;
}

async function main() {
  if (!Number.isInteger(PORT) || PORT < 1 || PORT > 65_535)
    fail(`PORT must be a port number, not "${process.env.PORT}"`);
  if (!existsSync(WRANGLER)) fail("wrangler is not installed: run `npm ci` first");
  if (!(await portIsFree(PORT))) fail(`${HOST}:${PORT} is already in use; stop what runs there or set PORT=…`);
  const adminKey = ensureDevVars();
  await applyMigrations();

  // Local webhook receivers (http://127.0.0.1:…) are allowed here only; production accepts https
  // to public hosts (README "Outbound webhooks").
  const dev = runWrangler([
    "dev",
    "--ip",
    HOST,
    "--port",
    String(PORT),
    "--var",
    "OUTBOUND_URL_POLICY:local",
    "--var",
    "DO_JURISDICTIONS:local",
  ]);
  dev.done.then(({ code }) => process.exit(code));
  if (!(await waitForHealth(dev))) return; // wrangler exited or we are stopping: exiting already

  /** @type {string | null} */
  let problem = null;
  try {
    problem = await seedDemo(adminKey);
  } catch (err) {
    problem = err instanceof Error ? err.message : String(err);
  }
  if (problem) log(`warning: could not seed the demo team (the server runs anyway): ${problem}`);

  console.log(
    [
      "",
      `[dev] Credits ledger ready on ${BASE}`,
      `[dev]   API docs:  ${BASE}/docs   (OpenAPI: ${BASE}/openapi.json)`,
      `[dev]   auth:      Authorization: Bearer <${KEY_NAME} from .dev.vars>`,
      `[dev]   demo team: ${BASE}/v1/teams/${DEMO_TEAM}/balance`,
      "[dev]   stop:      Ctrl-C",
      "",
    ].join("\n"),
  );
}

main().catch((err) => {
  console.error(err);
  child?.kill("SIGTERM");
  process.exit(1);
});
