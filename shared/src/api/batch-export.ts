import type { RunStatus } from '../job/run-state';

/**
 * Results export of a batch (`GET /v1/batches/:id/results?format=csv|jsonl`): one record per item,
 * written a page at a time so a large batch is never held whole. Pure (the CLI tests share it).
 */

export const EXPORT_FORMATS = ['csv', 'jsonl'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** One exported item: where it was in the file, its key (the key column's value), state, error code and result. */
export interface ExportRow {
  position: number;
  line: number | null;
  key: string | null;
  runId: string;
  status: RunStatus;
  errorCode: string | null;
  /** The run's result as stored: redacted by the runner before it left the sandbox. */
  result: unknown;
}

export const CSV_COLUMNS = ['position', 'line', 'key', 'run_id', 'status', 'error_code', 'result'] as const;

/**
 * A CSV cell: RFC 4180 quoting, and a cell a spreadsheet would take as a formula (starting with
 * `=`, `+`, `-`, `@`, a tab or a carriage return) is prefixed with `'` (OWASP "CSV injection"):
 * keys and results come from files and portals nobody here controls.
 */
export function csvCell(value: string | number | null): string {
  if (value === null) return '';
  let text = String(value);
  if (/^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export const csvRecord = (cells: readonly (string | number | null)[]) => `${cells.map(csvCell).join(',')}\r\n`;

export const csvHeader = () => csvRecord(CSV_COLUMNS);

/** The result column: the result's JSON (absent result: empty). */
const resultText = (result: unknown) => (result === null || result === undefined ? null : JSON.stringify(result));

export function exportLine(format: ExportFormat, row: ExportRow): string {
  if (format === 'jsonl') return `${JSON.stringify({ ...row, result: row.result ?? null })}\n`;
  return csvRecord([row.position, row.line, row.key, row.runId, row.status, row.errorCode, resultText(row.result)]);
}

export const contentTypeOf = (format: ExportFormat) => (format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8');
