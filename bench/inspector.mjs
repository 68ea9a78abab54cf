// The V8 inspector of the local workerd (Chrome DevTools protocol over a WebSocket), for the
// profiler and the stall finder. Miniflare lists one target per isolate: "core:user:" is the
// worker and its Durable Objects, "core:entry" Miniflare's own entry worker.
import WebSocket from "ws";

/**
 * One of the inspector's targets (its GET /json), the fields read here.
 * @typedef {{ title: string, webSocketDebuggerUrl: string }} Target
 */

/**
 * A V8 CPU profile, as Profiler.stop answers it: the fields read here. Times are in microseconds.
 * @typedef {object} Profile
 * @property {{ id: number, callFrame: { functionName: string, url: string, lineNumber: number } }[]} nodes
 * @property {number} startTime
 * @property {number[]} samples the node sampled, one a sample
 * @property {number[]} timeDeltas from the previous sample, one a sample
 */

/**
 * The `result` of the methods whose answers the bench reads, by method.
 * @typedef {{
 *   "Profiler.stop": { profile: Profile },
 *   "Runtime.getHeapUsage": { usedSize: number, totalSize: number },
 * }} Results
 */

/**
 * The protocol's answer to a call of `method`; the result of a method not in Results is unknown.
 * @template {string} M
 * @typedef {{ id: number, result: M extends keyof Results ? Results[M] : unknown }} Answer
 */

/**
 * An open target.
 * @typedef {object} Inspector
 * @property {string} name the target's title without "workerd: worker "
 * @property {<M extends string>(method: M, params?: object) => Promise<Answer<M>>} send
 * @property {() => void} close
 */

/**
 * The inspector's targets, each { title, webSocketDebuggerUrl }.
 * @param {number} port
 * @returns {Promise<Target[]>}
 */
export async function inspectorTargets(port) {
  return /** @type {Promise<Target[]>} */ ((await fetch(`http://127.0.0.1:${port}/json`)).json());
}

/**
 * Opens one target; `send(method, params)` resolves with the protocol's answer.
 * @param {Target} target
 * @returns {Promise<Inspector>}
 */
export async function connectInspector(target) {
  const ws = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    ws.on("open", resolve);
    ws.on("error", reject);
  });
  let nextId = 0;
  /** @type {Map<number, (msg: Answer<string>) => void>} by the id of the call */
  const pending = new Map();
  ws.on("message", (data) => {
    /** @type {Answer<string>} */
    const msg = JSON.parse(String(data));
    pending.get(msg.id)?.(msg);
    pending.delete(msg.id);
  });
  /** @type {Inspector["send"]} */
  const send = (method, params = {}) =>
    new Promise((resolve) => {
      nextId += 1;
      // The answer is the protocol's JSON: trusted to be what Results says for this method.
      pending.set(nextId, /** @type {(msg: Answer<string>) => void} */ (resolve));
      ws.send(JSON.stringify({ id: nextId, method, params }));
    });
  return { name: target.title.replace("workerd: worker ", ""), send, close: () => ws.close() };
}

/**
 * The isolate that runs our worker and its Durable Objects.
 * @param {number} port
 */
export async function connectWorkerIsolate(port) {
  const target = (await inspectorTargets(port)).find((t) => t.title.includes("core:user"));
  if (!target) throw new Error(`no core:user isolate among the inspector's targets on port ${port}`);
  return connectInspector(target);
}
