// The V8 inspector of the local workerd (Chrome DevTools protocol over a WebSocket), for the
// profiler and the stall finder. Miniflare lists one target per isolate: "core:user:" is the
// worker and its Durable Objects, "core:entry" Miniflare's own entry worker.
import WebSocket from "ws";

/** The inspector's targets, each { title, webSocketDebuggerUrl }. */
export async function inspectorTargets(port) {
  return (await fetch(`http://127.0.0.1:${port}/json`)).json();
}

/** Opens one target; `send(method, params)` resolves with the protocol's answer. */
export async function connectInspector(target) {
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    ws.on("open", resolve);
    ws.on("error", reject);
  });
  let nextId = 0;
  const pending = new Map();
  ws.on("message", (data) => {
    const msg = JSON.parse(String(data));
    pending.get(msg.id)?.(msg);
    pending.delete(msg.id);
  });
  const send = (method, params = {}) =>
    new Promise((resolve) => {
      nextId += 1;
      pending.set(nextId, resolve);
      ws.send(JSON.stringify({ id: nextId, method, params }));
    });
  return { name: target.title.replace("workerd: worker ", ""), send, close: () => ws.close() };
}

/** The isolate that runs our worker and its Durable Objects. */
export async function connectWorkerIsolate(port) {
  const target = (await inspectorTargets(port)).find((t) => t.title.includes("core:user"));
  if (!target) throw new Error(`no core:user isolate among the inspector's targets on port ${port}`);
  return connectInspector(target);
}
