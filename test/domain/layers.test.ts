/**
 * The dependency rule, checked on the source: routes → ledger client → object → pure domain, with
 * D1 (db/) beside the object and below the routes, and HTTP (http/) known only to the edge. Each
 * folder of src/ may import only what this table allows; a new import across a layer fails here.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

/** The source, relative to the project (vitest runs from its root). */
const SRC = "src";

/** What each folder may import: other folders of src/ (by name) and packages (by prefix). */
const ALLOWED: Record<string, { folders: string[]; packages: string[] }> = {
  domain: { folders: ["domain"], packages: ["node:crypto"] },
  db: { folders: ["db", "domain", "limits"], packages: ["drizzle-orm"] },
  object: {
    // stripe: an auto-recharge's payment leaves from the object's alarm (object/auto-recharge.ts).
    // history-queue: the shape of the messages the alarm sends to the history queue (message.ts).
    folders: ["object", "domain", "db", "limits", "catalog", "webhooks", "stripe", "history-queue"],
    packages: ["cloudflare:workers", "stripe"],
  },
  catalog: { folders: ["catalog", "domain", "limits"], packages: ["cloudflare:workers"] },
  http: { folders: ["http", "domain"], packages: ["hono"] },
  client: {
    folders: ["client", "domain", "http", "app-env", "object", "catalog", "limits"],
    packages: ["hono", "node:crypto"],
  },
  // The actor middleware checks roles against the domain's matrix and the header against limits.ts;
  // the bearer middleware checks keys against the isolate's copy of the key directory (keys/).
  middleware: { folders: ["middleware", "http", "app-env", "domain", "limits", "keys"], packages: ["hono"] },
  routes: {
    folders: ["routes", "client", "db", "domain", "http", "limits", "app-env", "stripe", "keys"],
    packages: ["@hono/zod-openapi", "hono", "stripe"],
  },
  webhooks: { folders: ["webhooks", "domain", "limits"], packages: ["cloudflare:workers"] },
  // The history queue's consumers: they land in D1 (db/) and tell each team's object its mark.
  "history-queue": { folders: ["history-queue", "db", "domain", "limits", "object"], packages: [] },
  // API keys: what a key is, the directory object that holds them, the worker's copy of it.
  keys: { folders: ["keys", "domain", "limits"], packages: ["cloudflare:workers"] },
  // The Stripe SDK as the worker uses it, and what Stripe's events mean for a team's purchases.
  stripe: { folders: ["stripe", "domain", "limits"], packages: ["stripe"] },
};

function filesOf(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? filesOf(join(dir, d.name)) : d.name.endsWith(".ts") ? [join(dir, d.name)] : [],
  );
}

/** The import specifiers of a file (static `import … from "…"` and `import("…")` types). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(/from "([^"]+)"|import\("([^"]+)"\)/g)].map((m) => m[1] ?? m[2] ?? "");
}

describe("the dependency rule", () => {
  for (const [folder, allowed] of Object.entries(ALLOWED)) {
    it(`src/${folder}/ imports only ${[...allowed.folders, ...allowed.packages].join(", ")}`, () => {
      const bad: string[] = [];
      for (const file of filesOf(join(SRC, folder))) {
        for (const spec of importsOf(file)) {
          if (spec.startsWith(".")) {
            const target = join(file, "..", spec).slice(SRC.length + 1);
            const top = target.split("/")[0] ?? "";
            if (!allowed.folders.includes(top.replace(/\.ts$/, "")))
              bad.push(`${file.slice(SRC.length + 1)} → ${spec}`);
          } else if (!allowed.packages.some((p) => spec === p || spec.startsWith(`${p}/`))) {
            bad.push(`${file.slice(SRC.length + 1)} → ${spec}`);
          }
        }
      }
      expect(bad).toEqual([]);
    });
  }

  it("the object is reached from routes only through the ledger client", () => {
    const direct = filesOf(join(SRC, "routes")).filter((f) => importsOf(f).some((s) => s.includes("/object/")));
    expect(direct).toEqual([]);
  });
});
