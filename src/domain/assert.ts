/**
 * Assertions on invariants (TigerBeetle style): a failure here is a bug, never an expected outcome.
 * Inside the team object it throws, which rolls the whole transaction back.
 */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`invariant violated: ${message}`);
}
