/**
 * CSV for history exports: RFC 4180 (CRLF line ends; a cell with a comma, quote, CR or LF is
 * quoted, quotes doubled), and no cell a spreadsheet would run as a formula: text starting with
 * = + - @ TAB or CR gets a leading single quote (OWASP "CSV injection"). Numbers are written as is.
 */
import type { Entry } from "../ledger/types";

export const CSV_COLUMNS = [
  "seq",
  "id",
  "createdAt",
  "type",
  "direction",
  "amount",
  "balanceAfter",
  "grantId",
  "holdId",
  "spendId",
  "feature",
  "quantity",
  "dimensions",
  "reference",
  "actor",
] as const;

const FORMULA_START = /^[=+\-@\t\r]/;
const NEEDS_QUOTES = /[",\r\n]/;

/** One cell: text is defused and quoted as needed; a missing value is an empty cell. */
export function csvCell(value: string | number | undefined): string {
  if (value === undefined) return "";
  if (typeof value === "number") return String(value);
  const text = FORMULA_START.test(value) ? `'${value}` : value;
  return NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function csvHeader(): string {
  return `${CSV_COLUMNS.join(",")}\r\n`;
}

export function csvRow(e: Entry): string {
  const cells: (string | number | undefined)[] = [
    e.seq,
    e.id,
    e.createdAt,
    e.type,
    e.direction,
    e.amount,
    e.balanceAfter,
    e.grantId,
    e.holdId,
    e.spendId,
    e.feature,
    e.quantity,
    e.dimensions === undefined ? undefined : JSON.stringify(e.dimensions),
    e.reference,
    e.actor,
  ];
  return `${cells.map(csvCell).join(",")}\r\n`;
}
