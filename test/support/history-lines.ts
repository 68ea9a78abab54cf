/**
 * The rule a team's history must follow line by line, as an accountant reads it (oldest first):
 * seqs 1, 2, 3, … without gaps; captures, and only captures, move nothing (`none`); every line's
 * balanceAfter is Σ in − Σ out up to it, never below zero; the last one is `available`. One
 * check, used on the object's rows, on the history read through the API, and by the model test.
 */

export interface Line {
  seq: number;
  type: string;
  direction: string;
  amount: number;
  balanceAfter: number;
}

/** What breaks the rule, if anything. `available` null: only the lines are checked. */
export function lineProblems(lines: readonly Line[], available: number | null): string[] {
  const problems: string[] = [];
  let running = 0;
  for (const [i, e] of [...lines].sort((a, b) => a.seq - b.seq).entries()) {
    if (e.seq !== i + 1) problems.push(`seq ${e.seq} where ${i + 1} was due`);
    if ((e.direction === "none") !== (e.type === "capture"))
      problems.push(`seq ${e.seq}: ${e.type} moves ${e.direction}`);
    running += e.direction === "in" ? e.amount : e.direction === "out" ? -e.amount : 0;
    if (running < 0) problems.push(`seq ${e.seq}: available below zero (${running})`);
    if (e.balanceAfter !== running)
      problems.push(`seq ${e.seq}: balanceAfter ${e.balanceAfter}, but Σ in − Σ out = ${running}`);
  }
  if (available !== null && available !== running)
    problems.push(`available ${available}, but Σ in − Σ out = ${running}`);
  return problems;
}
