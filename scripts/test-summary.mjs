// Prints vitest's JSON report as the one line CI records: "N passed, N failed[, N skipped]".
// A test file that fails to load has no failed tests of its own; it counts as one failure.
import { readFileSync } from "node:fs";

/**
 * The parts of vitest's JSON report read here (Jest's format).
 * @typedef {object} Report
 * @property {number} [numPassedTests]
 * @property {number} [numFailedTests]
 * @property {number} [numPendingTests]
 * @property {number} [numTodoTests]
 * @property {{ status: string, assertionResults?: { status: string }[] }[]} [testResults] one a test file
 */

const file = process.argv[2];
/** @type {Report} */
let report;
try {
  report = JSON.parse(readFileSync(file, "utf8"));
} catch (err) {
  console.log(`no test report at ${file}: ${err instanceof Error ? err.message : err}`);
  console.log("0 passed, 1 failed");
  process.exit(1);
}
const passed = report.numPassedTests ?? 0;
const brokenFiles = (report.testResults ?? []).filter(
  (r) => r.status === "failed" && (r.assertionResults ?? []).every((a) => a.status !== "failed"),
).length;
const failed = (report.numFailedTests ?? 0) + brokenFiles;
const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
console.log(
  skipped > 0 ? `${passed} passed, ${failed} failed, ${skipped} skipped` : `${passed} passed, ${failed} failed`,
);
