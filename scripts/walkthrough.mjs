// `npm run walkthrough`: runs the README's walkthrough exactly as written and checks it.
//
// The walkthrough is every fenced block whose info string is `sh walkthrough`. This script starts
// `npm run dev` (scripts/dev.mjs) on a free port of 127.0.0.1 (or, with `--base URL`, uses a
// server already running on 127.0.0.1), replaces the README's http://127.0.0.1:8787 with that
// server's URL, and runs all blocks in order in one bash (set -eu), so variables carry over.
// Every `curl` in a block must answer the status of the block's `# → NNN` comments, in order;
// each `"key":value` (and `Header-Name: value`) quoted in such a comment must appear in that
// response. It stops the server it started, leaves nothing running and gives up after 120 s.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort, portIsFree } from "./free-port.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const README = join(ROOT, "README.md");
const README_BASE = "http://127.0.0.1:8787";
const HOST = "127.0.0.1";
const OVERALL_TIMEOUT_MS = 120_000;
const SERVER_READY_TIMEOUT_MS = 90_000;
const SERVER_STOP_GRACE_MS = 15_000;
const CURL_MAX_TIME_S = 15;

// ---- arguments -------------------------------------------------------------------------------

/**
 * @param {string} [message]
 * @returns {never}
 */
function usage(message) {
  if (message) console.error(`walkthrough: ${message}`);
  console.error("usage: node scripts/walkthrough.mjs [--base http://127.0.0.1:PORT] [--verbose]");
  process.exit(2);
}

const args = process.argv.slice(2);
/** @type {string | null} */
let givenBase = null;
let verbose = false;
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--base") givenBase = args[++i] ?? usage("--base needs a URL");
  else if (args[i]?.startsWith("--base=")) givenBase = args[i].slice("--base=".length);
  else if (args[i] === "--verbose") verbose = true;
  else usage(`unknown argument ${args[i]}`);
}
if (givenBase !== null) {
  givenBase = givenBase.replace(/\/+$/, "");
  if (!/^http:\/\/127\.0\.0\.1:\d{1,5}$/.test(givenBase)) usage("--base must be http://127.0.0.1:<port>");
}

// ---- the README's walkthrough ----------------------------------------------------------------

/**
 * One `# → NNN …` comment: the status the block's next curl must answer, what its response must
 * contain, and the comment's README line.
 * @typedef {{ status: number, fragments: string[], line: number }} Expect
 */

/**
 * A `sh walkthrough` block: its first README line, the heading above it, its lines.
 * @typedef {{ line: number, heading: string, lines: string[], expects: Expect[] }} Block
 */

/**
 * `sh walkthrough` blocks with their line numbers, nearest heading and expected responses.
 * @returns {Block[]}
 */
function readWalkthrough() {
  const lines = readFileSync(README, "utf8").split("\n");
  /** @type {Block[]} */
  const blocks = [];
  let heading = "README.md";
  /** @type {Block | null} */
  let current = null;
  for (const [i, line] of lines.entries()) {
    if (current) {
      if (/^```\s*$/.test(line)) {
        blocks.push(current);
        current = null;
      } else {
        current.lines.push(line);
        const expect = /^\s*#\s*→\s*(\d{3})\b(.*)$/.exec(line);
        if (expect) current.expects.push({ status: Number(expect[1]), fragments: fragmentsOf(expect[2]), line: i + 1 });
      }
      continue;
    }
    const h = /^#{1,6}\s+(.*)$/.exec(line);
    if (h) heading = h[1];
    if (/^```sh\s+walkthrough\s*$/.test(line)) current = { line: i + 1, heading, lines: [], expects: [] };
  }
  if (current) throw new Error(`README.md:${current.line}: the walkthrough block is not closed`);
  return blocks;
}

/**
 * The parts of a `# → 201 …` comment a response must contain: "key":value pairs and headers.
 * @param {string} text
 * @returns {string[]}
 */
function fragmentsOf(text) {
  const pairs = text.match(/"[A-Za-z][A-Za-z0-9]*":(?:-?\d+|"[^"]*"|true|false|null)/g) ?? [];
  const headers = text.match(/\b[A-Z][a-z]+(?:-[A-Z][a-z]+)+: [A-Za-z0-9]+/g) ?? [];
  // "…" marks an elision in the README: such a value is not checked.
  return [...pairs, ...headers].filter((f) => !f.includes("…"));
}

/**
 * One bash script: a curl wrapper that records each response, then every block in order.
 * @param {Block[]} blocks
 * @param {string} base
 */
function bashScript(blocks, base) {
  /** @param {string} s */
  const quote = (s) => `'${s.replaceAll("'", "'\\''")}'`;
  const parts = [
    "set -eu",
    // Records each curl's status (from its dumped headers) and output, and refuses any URL
    // that is not the local server. The README's own flags and output stay as they are.
    `curl() {
  local arg hdr out rc
  for arg in "$@"; do
    case "$arg" in
      http://*|https://*)
        case "$arg" in "$WALKTHROUGH_BASE"/*|"$WALKTHROUGH_BASE") ;; *)
          echo "walkthrough: refusing a URL that is not $WALKTHROUGH_BASE: $arg" >&2; return 99 ;;
        esac ;;
    esac
  done
  hdr=$(mktemp "$WALKTHROUGH_DIR/hdr.XXXXXX")
  out=$(mktemp "$WALKTHROUGH_DIR/out.XXXXXX")
  command curl --max-time ${CURL_MAX_TIME_S} -D "$hdr" "$@" | tee "$out"
  rc=\${PIPESTATUS[0]}
  printf 'CURL %s %s %s\\n' "$(awk '/^HTTP\\//{s=$2} END{print (s==""?"000":s)}' "$hdr")" "$rc" "$out" >> "$WALKTHROUGH_LOG"
  return "$rc"
}`,
  ];
  for (const [i, block] of blocks.entries()) {
    const title = `── ${block.heading} (README.md:${block.line})`;
    parts.push(`printf 'BLOCK %d\\n' ${i} >> "$WALKTHROUGH_LOG"`);
    parts.push(`printf '\\n%s\\n' ${quote(title)}`);
    parts.push(block.lines.join("\n").replaceAll(README_BASE, base));
  }
  parts.push(`printf 'DONE\\n' >> "$WALKTHROUGH_LOG"`);
  return `${parts.join("\n")}\n`;
}

// ---- processes -------------------------------------------------------------------------------

/**
 * Process groups this script started; each is killed on the way out, whatever happens.
 * @type {Set<number>}
 */
const groups = new Set();
/**
 * The scratch directory (bash script, responses); removed on the way out.
 * @type {string | null}
 */
let scratch = null;

/**
 * Sends `signal` to the process group `pid` leads; false when there is no such group (or no pid:
 * the process never started).
 * @param {number | undefined} pid
 * @param {NodeJS.Signals | 0} signal
 */
function killGroup(pid, signal) {
  if (pid === undefined) return false;
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    return false; // the group is gone already
  }
}

/** @param {number | undefined} pid */
const groupAlive = (pid) => killGroup(pid, 0);
/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The `npm run dev` this script started. `problem` is "ready" once it is, else what went wrong;
 * `output()` is all it printed so far.
 * @typedef {object} Server
 * @property {import("node:child_process").ChildProcess} proc
 * @property {Promise<number | NodeJS.Signals | null>} exited
 * @property {boolean} ready
 * @property {string} problem
 * @property {() => string} output
 */

/**
 * Starts scripts/dev.mjs in its own process group; resolves once it printed that it is ready.
 * @param {number} port
 * @returns {Promise<Server>}
 */
async function startServer(port) {
  const proc = spawn(process.execPath, [join(ROOT, "scripts", "dev.mjs")], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), WRANGLER_SEND_METRICS: "false", CREDITS_DEV_EXIT_WITH_PARENT: "1" },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  if (proc.pid !== undefined) groups.add(proc.pid);
  let output = "";
  /** @param {Buffer} d */
  const collect = (d) => {
    output += d;
    if (verbose) process.stdout.write(d);
  };
  proc.stdout.on("data", collect);
  proc.stderr.on("data", collect);
  /** @type {Server["exited"]} */
  const exited = new Promise((resolve) => proc.on("exit", (code, signal) => resolve(code ?? signal)));
  const deadline = Date.now() + SERVER_READY_TIMEOUT_MS;
  /** @type {string | null} */
  let result = null;
  exited.then((code) => {
    result ??= `npm run dev exited (${code}) before it was ready`;
  });
  while (result === null) {
    if (/\[dev\] Credits ledger ready on/.test(output)) result = "ready";
    else if (Date.now() > deadline) result = `npm run dev was not ready within ${SERVER_READY_TIMEOUT_MS / 1000} s`;
    else await sleep(100);
  }
  if (result === "ready" && /\[dev\] warning/.test(output)) result = "npm run dev could not seed the demo team";
  return { proc, exited, ready: result === "ready", problem: result, output: () => output };
}

/**
 * SIGTERM to dev.mjs (it stops wrangler), then SIGKILL to whatever is left of its group.
 * @param {Server} server
 */
async function stopServer(server) {
  const pid = server.proc.pid;
  if (server.proc.exitCode === null && server.proc.signalCode === null) server.proc.kill("SIGTERM");
  const deadline = Date.now() + SERVER_STOP_GRACE_MS;
  while (groupAlive(pid) && Date.now() < deadline) await sleep(100);
  if (groupAlive(pid)) {
    console.error("walkthrough: the dev server did not stop in time; killing it");
    killGroup(pid, "SIGKILL");
    await sleep(200);
  }
  if (pid !== undefined) groups.delete(pid);
}

/** Everything still running: SIGTERM first, SIGKILL what is left a few seconds later. */
async function killAll() {
  for (const pid of groups) killGroup(pid, "SIGTERM");
  const deadline = Date.now() + 5_000;
  while ([...groups].some(groupAlive) && Date.now() < deadline) await sleep(100);
  for (const pid of groups) killGroup(pid, "SIGKILL");
  groups.clear();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
  scratch = null;
}

/**
 * Runs the script in bash (own process group); streams its output; resolves with its exit code.
 * @param {string} script
 * @param {string} dir the scratch directory
 * @param {string} log the file the curl wrapper records responses in
 * @param {string} base
 * @returns {Promise<number>}
 */
function runBash(script, dir, log, base) {
  const file = join(dir, "walkthrough.sh");
  writeFileSync(file, script);
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (/^(https?|all|ftp)_proxy$/i.test(k)) delete env[k];
  Object.assign(env, {
    NO_PROXY: "127.0.0.1,localhost",
    no_proxy: "127.0.0.1,localhost",
    WALKTHROUGH_BASE: base,
    WALKTHROUGH_DIR: dir,
    WALKTHROUGH_LOG: log,
  });
  env.WRANGLER_SEND_METRICS = "false";
  // From the project's directory, as the README says (its `npx wrangler` is the local one).
  const proc = spawn("bash", [file], { cwd: ROOT, env, stdio: ["ignore", "inherit", "inherit"], detached: true });
  if (proc.pid !== undefined) groups.add(proc.pid);
  return new Promise((resolve) => {
    proc.on("error", (err) => {
      console.error(`walkthrough: cannot run bash: ${err.message}`);
      resolve(127);
    });
    proc.on("exit", (code, signal) => {
      killGroup(proc.pid, "SIGKILL"); // a curl left behind, if any
      if (proc.pid !== undefined) groups.delete(proc.pid);
      resolve(code ?? (signal ? 128 : 1));
    });
  });
}

// ---- checking --------------------------------------------------------------------------------

/**
 * Compares what each block's curls answered with the block's `# →` comments.
 * @param {Block[]} blocks
 * @param {string} log the curl wrapper's records
 * @param {number} exitCode bash's
 */
function check(blocks, log, exitCode) {
  /** @type {string[]} */
  const problems = [];
  /** @type {{ status: number, exit: number, output: string }[][]} one list of curl calls a block */
  const seen = blocks.map(() => []);
  let block = -1;
  let done = false;
  for (const line of log.split("\n")) {
    const b = /^BLOCK (\d+)$/.exec(line);
    if (b) block = Number(b[1]);
    else if (line === "DONE") done = true;
    else {
      const c = /^CURL (\d{3}) (\d+) (.+)$/.exec(line);
      if (c && block >= 0) seen[block].push({ status: Number(c[1]), exit: Number(c[2]), output: c[3] });
    }
  }
  if (!done) {
    const at = blocks[Math.max(block, 0)];
    problems.push(`README.md:${at?.line}: the block failed (bash exited with ${exitCode}); later blocks did not run`);
  }
  for (const [i, b] of blocks.entries()) {
    if (i > block) break;
    const calls = seen[i];
    const finished = done || i < block;
    for (const [j, expect] of b.expects.entries()) {
      const call = calls[j];
      if (!call) {
        if (finished) problems.push(`README.md:${expect.line}: expected ${expect.status}, but no curl ran for it`);
        continue;
      }
      if (call.status !== expect.status)
        problems.push(`README.md:${expect.line}: expected HTTP ${expect.status}, got ${call.status}`);
      if (call.exit !== 0) problems.push(`README.md:${expect.line}: curl exited with ${call.exit}`);
      let text = "";
      try {
        text = readFileSync(call.output, "utf8");
      } catch {
        // no output recorded
      }
      for (const fragment of expect.fragments)
        if (!text.includes(fragment)) problems.push(`README.md:${expect.line}: the response has no ${fragment}`);
    }
    if (finished && calls.length > b.expects.length)
      problems.push(
        `README.md:${b.line}: ${calls.length} curl calls ran but the block has ${b.expects.length} "# →" comments`,
      );
  }
  const checked = blocks.reduce((n, b) => n + b.expects.length, 0);
  return { problems, checked };
}

/**
 * What `npm run dev` prints and promises besides the walkthrough: the URLs and the demo team.
 * @param {string} base
 * @param {boolean} startedHere
 */
async function serverChecks(base, startedHere) {
  /** @type {string[]} */
  const problems = [];
  const paths = ["/healthz", "/openapi.json", "/docs"];
  if (startedHere) paths.push("/v1/teams/demo/balance");
  for (const path of paths) {
    try {
      const res = await fetch(`${base}${path}`, {
        headers: { authorization: "Bearer dev-admin-key" },
        signal: AbortSignal.timeout(CURL_MAX_TIME_S * 1000),
      });
      await res.arrayBuffer();
      if (res.status !== 200) problems.push(`GET ${path} answered ${res.status}, not 200`);
    } catch (err) {
      problems.push(`GET ${path} failed: ${err instanceof Error ? err.message : err}`);
    }
  }
  return problems;
}

// ---- main ------------------------------------------------------------------------------------

async function main() {
  const started = Date.now();
  const blocks = readWalkthrough();
  if (blocks.length === 0) throw new Error("README.md has no ```sh walkthrough blocks");
  const dir = mkdtempSync(join(tmpdir(), "walkthrough-"));
  scratch = dir;
  /** @type {Server | null} */
  let server = null;
  try {
    let base = givenBase;
    if (base === null) {
      // A second wrangler dev on the same .wrangler/ state as a running `npm run dev` is asking
      // for trouble: use that server instead.
      if (!(await portIsFree(Number(new URL(README_BASE).port))))
        throw new Error(
          `something already listens on ${README_BASE} (npm run dev?): stop it, or run against it with` +
            ` npm run walkthrough -- --base ${README_BASE}`,
        );
      const port = await freePort();
      base = `http://${HOST}:${port}`;
      console.log(`walkthrough: starting npm run dev on ${base} …`);
      server = await startServer(port);
      if (!server.ready) {
        if (!verbose) process.stderr.write(server.output());
        throw new Error(server.problem);
      }
      console.log(`walkthrough: server ready after ${((Date.now() - started) / 1000).toFixed(1)} s`);
    } else {
      console.log(`walkthrough: using the server on ${base}`);
    }

    const log = join(dir, "log");
    writeFileSync(log, "");
    const exitCode = await runBash(bashScript(blocks, base), dir, log, base);
    const { problems, checked } = check(blocks, readFileSync(log, "utf8"), exitCode);
    problems.push(...(await serverChecks(base, server !== null)));
    if (problems.some((p) => p.includes("got 401")))
      problems.push("the walkthrough uses the key dev-admin-key: is ADMIN_API_KEY in .dev.vars another one?");
    if (server) {
      await stopServer(server);
      server = null;
    }
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    console.log("");
    if (problems.length > 0) {
      for (const p of problems) console.error(`✗ ${p}`);
      console.error(`walkthrough: FAILED (${problems.length} problem(s), ${seconds} s)`);
      return 1;
    }
    console.log(
      `walkthrough: OK: ${blocks.length} blocks, ${checked} responses checked, server URLs answer, ${seconds} s`,
    );
    return 0;
  } finally {
    if (server) await stopServer(server);
    await killAll();
  }
}

const timer = setTimeout(() => {
  console.error(`walkthrough: gave up after ${OVERALL_TIMEOUT_MS / 1000} s`);
  killAll().then(() => process.exit(1));
}, OVERALL_TIMEOUT_MS);

for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(signal, () => {
    console.error(`walkthrough: ${signal}; stopping`);
    killAll().then(() => process.exit(130));
  });
}

main()
  .then((code) => {
    clearTimeout(timer);
    process.exitCode = code;
  })
  .catch((err) => {
    clearTimeout(timer);
    console.error(`walkthrough: ${err instanceof Error ? err.message : err}`);
    process.exitCode = 1;
    return killAll();
  });
