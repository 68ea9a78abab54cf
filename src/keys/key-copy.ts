/**
 * The worker's copy of the key directory, one per isolate, so checking a key costs no D1 query and,
 * in the steady state, no RPC. Freshness as the catalog's copy (client/catalog-copy.ts): younger
 * than KEYS_REFRESH_AFTER_MS it is used as is; older, it is used while one background refresh asks
 * for anything newer; older than KEYS_MAX_STALENESS_MS it is never used. So a revoked key stops
 * working in every isolate within KEYS_MAX_STALENESS_MS, and at once in the isolate that revoked
 * it. An id the copy does not know asks again (at most once per KEYS_MISS_REFRESH_MS), so a key
 * made through another isolate works at once.
 */
import { KEYS_MAX_STALENESS_MS, KEYS_MISS_REFRESH_MS, KEYS_REFRESH_AFTER_MS } from "../limits";
import type { KeyRecord } from "./api-key";
import { type KeySnapshot, keyDirectoryStub } from "./key-directory-object";

interface Copy {
  version: number;
  keys: ReadonlyMap<string, KeyRecord>;
  fetchedAtMs: number;
}

let copy: Copy | null = null;
let refreshing: Promise<Copy> | null = null;
let lastMissRefreshMs = 0;

function refresh(env: Cloudflare.Env): Promise<Copy> {
  if (refreshing) return refreshing;
  const startedAtMs = Date.now();
  const known = copy;
  refreshing = keyDirectoryStub(env)
    .snapshotIfNewer(known?.version ?? -1)
    .then((snapshot: KeySnapshot | null) => {
      const next: Copy =
        snapshot || !known
          ? {
              version: snapshot?.version ?? 0,
              keys: new Map((snapshot?.keys ?? []).map((k) => [k.id, k])),
              fetchedAtMs: startedAtMs,
            }
          : { ...known, fetchedAtMs: startedAtMs };
      copy = next;
      return next;
    })
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

/** The key with this id as the isolate knows it, within the staleness bound; undefined when there is none. */
export async function findKey(
  env: Cloudflare.Env,
  id: string,
  background: (p: Promise<unknown>) => void,
): Promise<KeyRecord | undefined> {
  const now = Date.now();
  let current = copy;
  if (!current || now - current.fetchedAtMs >= KEYS_MAX_STALENESS_MS) current = await refresh(env);
  else if (now - current.fetchedAtMs >= KEYS_REFRESH_AFTER_MS)
    background(
      refresh(env).catch((err: unknown) => {
        console.error(JSON.stringify({ keysRefresh: String(err) }));
      }),
    );
  const found = current.keys.get(id);
  if (found || now - lastMissRefreshMs < KEYS_MISS_REFRESH_MS) return found;
  lastMissRefreshMs = now;
  return (await refresh(env)).keys.get(id);
}

/** After a key was made or revoked through this isolate: its next request reads the directory again. */
export function dropKeyCopy(): void {
  copy = null;
}
