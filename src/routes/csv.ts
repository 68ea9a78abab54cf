/**
 * CSV for history exports: RFC 4180 (CRLF line ends; a cell with a comma, quote, CR or LF is
 * quoted, quotes doubled), and no cell a spreadsheet would run as a formula: text starting with
 * = + - @ TAB or CR gets a leading single quote (OWASP "CSV injection"). Numbers are written as is.
 * `direction` is `in`, `out` or `none`, so In − Out adds up to `balanceAfter` line by line.
 */
import { CSV_FIELDS, csvValues } from "../domain/entry";
import type { Entry } from "../domain/vocabulary";

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
  return `${CSV_FIELDS.join(",")}\r\n`;
}

/** One entry's line; the columns and their values come from domain/entry.ts. */
export function csvRow(e: Entry): string {
  return `${csvValues(e).map(csvCell).join(",")}\r\n`;
}
