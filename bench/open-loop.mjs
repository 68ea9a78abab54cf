// Open-loop load for latency at a fixed rate: request i goes out at start + i/rate whatever the
// earlier ones did, and its latency counts from that scheduled moment, so a stall delays every
// request behind it (no coordinated omission). Up to 256 keep-alive connections. Used by
// `npm run bench` (latency at half rate) and `npm run bench:stalls`.
import { Agent, request as httpRequest } from "node:http";

/**
 * One request: GET, no headers and no body unless said.
 * @typedef {{ method?: string, path: string, headers?: import("node:http").OutgoingHttpHeaders, body?: string }} LoadRequest
 */

/**
 * One request sent: when it was due (ms from the start), its latency from then, its status.
 * @typedef {{ atMs: number, latencyMs: number, status: number }} LoadRecord
 */

/**
 * Sends rate × seconds requests built by make(i) = { method, path, headers, body } to base.
 * Returns one record a request: { atMs (scheduled, from the start), latencyMs, status }, with
 * status 0 when the request failed without an answer.
 * @param {object} options
 * @param {string} options.base e.g. http://127.0.0.1:8787
 * @param {number} options.rate requests a second
 * @param {number} options.seconds
 * @param {(i: number) => LoadRequest} options.make
 * @returns {Promise<LoadRecord[]>}
 */
export async function openLoop({ base, rate, seconds, make }) {
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const total = Math.round(rate * seconds);
  /** @type {LoadRecord[]} */
  const records = [];
  /** @type {Promise<void>[]} */
  const inFlight = [];
  /**
   * @param {number} atMs
   * @param {number} scheduled
   * @param {LoadRequest} request
   * @returns {Promise<void>}
   */
  const send = (atMs, scheduled, { method = "GET", path, headers = {}, body }) =>
    new Promise((resolve) => {
      const req = httpRequest(`${base}${path}`, { method, headers, agent }, (res) => {
        res.resume();
        res.on("end", () => {
          records.push({ atMs, latencyMs: performance.now() - scheduled, status: res.statusCode ?? 0 });
          resolve();
        });
      });
      req.on("error", () => {
        records.push({ atMs, latencyMs: performance.now() - scheduled, status: 0 });
        resolve();
      });
      req.end(body);
    });
  const start = performance.now();
  let i = 0;
  /** @type {Promise<void>} resolves once every request is sent */
  const allSent = new Promise((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (i < total && start + (i * 1000) / rate <= now) {
        const scheduled = start + (i * 1000) / rate;
        inFlight.push(send(scheduled - start, scheduled, make(i)));
        i += 1;
      }
      if (i < total) setTimeout(tick, 1);
      else resolve();
    };
    tick();
  });
  await allSent;
  await Promise.all(inFlight);
  agent.destroy();
  return records;
}
