/**
 * A real webhook receiver for the workers tests: an HTTP server on 127.0.0.1 (ephemeral port),
 * started once by vitest in Node (globalSetup of the workers project) and reached from workerd
 * over the network, as a customer's endpoint would be. Its URL reaches the tests through
 * `inject("webhookReceiverUrl")`.
 *
 * - Any path but /__*: recorded (method, headers, raw body, what it answered, when), then
 *   answered with the status set for that path (200 unless told), after the delay set for it.
 * - POST /__control {path, status, delayMs?}: how to answer that path from now on.
 * - GET /__records?path=/x: the records of that path, oldest first.
 *
 * Every test uses paths of its own, so nothing needs resetting between tests.
 */
import { createServer, type IncomingMessage } from "node:http";
import type { TestProject } from "vitest/node";

/** One request the receiver got. */
export interface ReceivedRequest {
  n: number;
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
  /** The status it answered (or was about to, when the caller gave up first). */
  answered: number;
  receivedAtMs: number;
}

export interface ReceiverControl {
  path: string;
  status: number;
  delayMs?: number;
}

declare module "vitest" {
  export interface ProvidedContext {
    webhookReceiverUrl: string;
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Uint8Array[] = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const all = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
      let at = 0;
      for (const c of chunks) {
        all.set(c, at);
        at += c.length;
      }
      resolve(new TextDecoder().decode(all));
    });
    req.on("error", reject);
  });
}

function headersOf(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(", ") : v;
  return out;
}

export async function setup(project: TestProject): Promise<() => Promise<void>> {
  const records: ReceivedRequest[] = [];
  const controls = new Map<string, { status: number; delayMs: number }>();
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://receiver.invalid");
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    readBody(req).then(
      async (body) => {
        if (url.pathname === "/__control" && req.method === "POST") {
          const c = JSON.parse(body) as ReceiverControl;
          controls.set(c.path, { status: c.status, delayMs: c.delayMs ?? 0 });
          return json(200, { ok: true });
        }
        if (url.pathname === "/__records") {
          const path = url.searchParams.get("path");
          return json(
            200,
            records.filter((r) => r.path === path),
          );
        }
        const control = controls.get(url.pathname) ?? { status: 200, delayMs: 0 };
        records.push({
          n: records.length + 1,
          method: req.method ?? "",
          path: url.pathname,
          headers: headersOf(req),
          body,
          answered: control.status,
          receivedAtMs: Date.now(),
        });
        if (control.delayMs > 0) await new Promise((r) => setTimeout(r, control.delayMs));
        if (!res.writableEnded) json(control.status, { received: true });
      },
      () => json(400, { error: "unreadable body" }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("the webhook receiver has no port");
  project.provide("webhookReceiverUrl", `http://127.0.0.1:${address.port}`);
  return async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
}
