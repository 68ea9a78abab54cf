// The part of node:http the webhook receiver uses (receiver-global-setup.ts runs in Node, as a
// vitest globalSetup). Declared here, as test/domain/node-fs.d.ts does, so the type-check never
// takes in Node's globals, which clash with the Workers runtime's.
declare module "node:http" {
  interface IncomingMessage {
    method?: string;
    url?: string;
    headers: Record<string, string | string[] | undefined>;
    on(event: "data", listener: (chunk: Uint8Array) => void): this;
    on(event: "end" | "close", listener: () => void): this;
    on(event: "error", listener: (err: Error) => void): this;
  }
  interface ServerResponse {
    writeHead(status: number, headers?: Record<string, string>): this;
    end(body?: string): this;
    readonly writableEnded: boolean;
  }
  interface Server {
    listen(port: number, host: string, callback: () => void): this;
    address(): { port: number } | string | null;
    close(callback?: (err?: Error) => void): this;
    closeAllConnections(): void;
  }
  export function createServer(handler: (req: IncomingMessage, res: ServerResponse) => void): Server;
}
