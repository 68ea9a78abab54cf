// A throwaway PostgreSQL cluster for the bench's peer (bench/peer/server.mjs): initdb in a fresh
// folder of the OS temp directory (the same disk as the worker's local state), one postmaster on a
// free loopback port with fsync and synchronous_commit on (full_page_writes at its default, on),
// and a stop function that shuts it down and removes the folder, also when this process exits
// (an error, SIGINT through the caller's process.exit). Debian's packages only: no download.
//
// initdb and postgres refuse to run as root; as root, both run as the `postgres` user the Debian
// package creates (child_process's uid/gid options), and the folder is handed to that user.
import { spawn, spawnSync } from "node:child_process";
import { chownSync, closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { freePort } from "../../scripts/free-port.mjs";

/** How to install what this module needs, printed when it is missing. */
export const INSTALL_HINT =
  "apt-get install postgresql (Debian/Ubuntu), or set PG_BIN to a folder holding initdb and postgres";

/**
 * The folder holding initdb and postgres: PG_BIN, else the newest /usr/lib/postgresql/<version>/bin
 * (Debian's layout), else null.
 * @returns {string | null}
 */
export function findPostgres() {
  /** @param {string} dir */
  const usable = (dir) => existsSync(join(dir, "initdb")) && existsSync(join(dir, "postgres"));
  if (process.env.PG_BIN) return usable(process.env.PG_BIN) ? process.env.PG_BIN : null;
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((v) => /^\d+(\.\d+)?$/.test(v))
    .sort((a, b) => Number(b) - Number(a));
  for (const v of versions) if (usable(join(root, v, "bin"))) return join(root, v, "bin");
  return null;
}

/**
 * Who runs the cluster: this process's user, or, as root, the `postgres` user (null when there
 * is none, and then no cluster can start).
 * @returns {{ uid: number, gid: number, name: string } | null}
 */
function clusterUser() {
  const uid = process.getuid?.() ?? 0;
  if (uid !== 0) return { uid, gid: process.getgid?.() ?? 0, name: "(this user)" };
  const line = readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .find((l) => l.startsWith("postgres:"));
  const [, , u, g] = line?.split(":") ?? [];
  if (u === undefined || g === undefined) return null;
  return { uid: Number(u), gid: Number(g), name: "postgres" };
}

/**
 * Blocks this thread for `ms` (for the exit path, where nothing asynchronous runs).
 * @param {number} ms
 */
function sleepSync(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * A running cluster: where to connect (trust authentication on loopback, user and database
 * `bench`), its server version and how to stop it.
 * @typedef {object} Cluster
 * @property {pg.ClientConfig & { host: string, port: number, user: string, database: string }} connection
 * @property {string} version e.g. "PostgreSQL 15.10 (Debian 15.10-0+deb12u1) on x86_64…"
 * @property {Record<string, string>} settings fsync, synchronous_commit, full_page_writes, wal_sync_method
 * @property {string} dir the temporary folder (data and log), removed by stop
 * @property {() => void} stop fast shutdown, then removal of the folder; safe to call twice
 */

/**
 * Creates and starts a fresh cluster. Throws when it cannot (the caller decides whether to skip).
 * @param {string} bin the folder of initdb and postgres (findPostgres)
 * @returns {Promise<Cluster>}
 */
export async function startPostgres(bin) {
  const user = clusterUser();
  if (!user) throw new Error("running as root, and there is no `postgres` user to run initdb and postgres as");
  const dir = mkdtempSync(join(tmpdir(), "credits-peer-pg-"));
  const data = join(dir, "data");
  /** @type {import("node:child_process").ChildProcess | null} */
  let child = null;
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    const pid = child?.pid;
    if (pid !== undefined && child?.exitCode === null && child.signalCode === null) {
      // SIGINT is PostgreSQL's fast shutdown; the postmaster removes postmaster.pid as it ends.
      // Its zombie stays until the event loop reaps it, so wait on the file, not on the pid.
      try {
        process.kill(pid, "SIGINT");
      } catch {}
      const pidFile = join(data, "postmaster.pid");
      for (let waited = 0; existsSync(pidFile) && waited < 15_000; waited += 50) sleepSync(50);
      if (existsSync(pidFile)) {
        try {
          process.kill(-pid, "SIGKILL"); // its process group: the postmaster and its backends
        } catch {}
        sleepSync(200);
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  process.on("exit", stop);
  try {
    const ids = { uid: user.uid, gid: user.gid };
    chownSync(dir, user.uid, user.gid);
    // --no-sync: initdb's own final flush of the template files only; the server below runs
    // with fsync on, so every commit it acknowledges is on the disk.
    const init = spawnSync(
      join(bin, "initdb"),
      ["-D", data, "-U", "bench", "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"],
      { ...ids, cwd: dir, encoding: "utf8", timeout: 120_000, env: { ...process.env, LC_ALL: "C" } },
    );
    if (init.status !== 0) throw new Error(`initdb failed (${init.status}): ${init.stderr || init.stdout}`);
    const port = await freePort();
    const log = openSync(join(dir, "postgres.log"), "a");
    chownSync(join(dir, "postgres.log"), user.uid, user.gid);
    child = spawn(
      join(bin, "postgres"),
      [
        "-D",
        data,
        "-p",
        String(port),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        `unix_socket_directories=${dir}`,
        "-c",
        "fsync=on",
        "-c",
        "synchronous_commit=on",
        "-c",
        "max_connections=50",
      ],
      { ...ids, cwd: dir, stdio: ["ignore", log, log], detached: true, env: { ...process.env, LC_ALL: "C" } },
    );
    closeSync(log); // the child holds its own copy
    const connection = { host: "127.0.0.1", port, user: "bench", database: "postgres" };
    const startedAt = Date.now();
    for (;;) {
      if (child.exitCode !== null) throw new Error(`postgres exited while starting: ${tail(dir)}`);
      const client = new pg.Client(connection);
      try {
        await client.connect();
        await client.query("CREATE DATABASE bench");
        await client.end();
        break;
      } catch (err) {
        await client.end().catch(() => {});
        if (Date.now() - startedAt > 30_000) throw new Error(`postgres did not accept connections: ${err}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    const bench = { ...connection, database: "bench" };
    const client = new pg.Client(bench);
    await client.connect();
    const version = /** @type {{ version: string }} */ ((await client.query("SELECT version()")).rows[0]).version;
    const names = ["fsync", "synchronous_commit", "full_page_writes", "wal_sync_method"];
    const rows = /** @type {{ name: string, setting: string }[]} */ (
      (await client.query("SELECT name, setting FROM pg_settings WHERE name = ANY($1)", [names])).rows
    );
    await client.end();
    const settings = Object.fromEntries(rows.map((r) => [r.name, r.setting]));
    if (settings.fsync !== "on" || settings.synchronous_commit !== "on")
      throw new Error(`postgres runs without durable commits: ${JSON.stringify(settings)}`);
    return { connection: bench, version, settings, dir, stop };
  } catch (err) {
    stop();
    throw err;
  }
}

/**
 * The end of the cluster's log, for an error message.
 * @param {string} dir
 */
function tail(dir) {
  try {
    return readFileSync(join(dir, "postgres.log"), "utf8").slice(-2000);
  } catch {
    return "(no log)";
  }
}
