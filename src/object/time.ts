/** The object keeps times as integer milliseconds since the epoch; the wire shows ISO-8601 UTC. */
export const iso = (ms: number): string => new Date(ms).toISOString();
