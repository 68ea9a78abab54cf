// Ports on 127.0.0.1, for the scripts that start a local server: `npm run dev` checks that its
// port is free before it starts wrangler, the walkthrough checks that no `npm run dev` holds the
// README's port and picks a free one for its own server, and scripts/local-worker.mjs picks one
// for the bench, profile and soak. Kept apart from local-worker.mjs so that a script needing only
// a port does not load Miniflare.
import { createServer } from "node:net";

const HOST = "127.0.0.1";

/**
 * A port the OS says is free on 127.0.0.1 (it listens on port 0, reads the port it was given and
 * closes). Another process may take it before the caller listens on it.
 * @returns {Promise<number>}
 */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      // Listening on a host and port, the address is an object (a string only for a pipe or socket).
      if (address === null || typeof address === "string") {
        server.close(() => reject(new Error(`no port in the listening address ${address}`)));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}

/**
 * Whether `port` can be listened on at 127.0.0.1 now: false when something holds it (or listening
 * fails for any other reason).
 * @param {number} port
 * @returns {Promise<boolean>}
 */
export function portIsFree(port) {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, HOST, () => server.close(() => resolve(true)));
  });
}
