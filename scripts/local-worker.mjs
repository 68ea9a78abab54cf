// Starts the worker under `wrangler dev` on 127.0.0.1 with a fresh temporary local state (D1
// migrations applied, the admin key passed with --var), for the bench, the profiler and the soak.
// The server and its state are removed when this process exits, however it exits.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const WRANGLER = join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");

/** A port the OS says is free on loopback. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function databaseName() {
  const toml = readFileSync(join(ROOT, "wrangler.toml"), "utf8");
  return /^\s*database_name\s*=\s*"([^"]+)"/m.exec(toml)?.[1] ?? "credits-ledger";
}

/**
 * Starts the worker and waits for GET /healthz. Returns its base URL and a stop function (also
 * run on process exit). Options: port (default: a free one), adminKey, inspectorPort, tag (names
 * the temporary state folder), startTimeoutMs.
 */
export async function startLocalWorker({ port, adminKey, inspectorPort, tag = "worker", startTimeoutMs = 90_000 }) {
  const listenPort = port ?? (await freePort());
  const base = `http://127.0.0.1:${listenPort}`;
  const persist = mkdtempSync(join(tmpdir(), `credits-${tag}-`));
  const env = { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false" };
  let child = null;
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    if (child && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(-child.pid, "SIGTERM"); // its process group: wrangler and its workerd
      } catch {}
    }
    rmSync(persist, { recursive: true, force: true });
  };
  process.on("exit", stop);

  const migrate = spawnSync(
    process.execPath,
    [WRANGLER, "d1", "migrations", "apply", databaseName(), "--local", "--persist-to", persist],
    { cwd: ROOT, env, encoding: "utf8", timeout: 120_000 },
  );
  if (migrate.status !== 0) throw new Error(`migrations failed: ${migrate.stderr || migrate.stdout}`);
  const args = ["dev", "--ip", "127.0.0.1", "--port", String(listenPort), "--persist-to", persist];
  if (inspectorPort !== undefined) args.push("--inspector-port", String(inspectorPort));
  args.push("--var", `ADMIN_API_KEY:${adminKey}`, "--log-level", "error", "--show-interactive-dev-session=false");
  child = spawn(process.execPath, [WRANGLER, ...args], {
    cwd: ROOT,
    env,
    stdio: ["ignore", "ignore", "inherit"],
    detached: true,
  });
  const startedAt = Date.now();
  while (Date.now() - startedAt < startTimeoutMs) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited with ${child.exitCode}`);
    try {
      const r = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(2_000) });
      if (r.ok) return { base, stop, persist };
    } catch {}
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`wrangler dev did not answer ${base}/healthz within ${startTimeoutMs / 1000} s`);
}
