import { OrderlyError } from '../errors';

/**
 * Work-queue items: the rows of a CSV file or the lines of a JSONL file, parsed strictly. Pure (no
 * server engines), so the CLI and the control room share it. Error messages name lines and
 * columns, never cell values (items hold PHI).
 */

/** The most items one batch holds (one transaction; 9 bind parameters a run stay under PostgreSQL's 65,535). */
export const BATCH_MAX_ITEMS = 5000;

export type ItemsFormat = 'csv' | 'jsonl';

/** One item and the line of the file it starts on (1-based, counting the CSV header). */
export interface ParsedItem {
  line: number;
  item: Record<string, unknown>;
}

const invalid = (message: string, line?: number) => new OrderlyError('ORDERLY_E_BATCH_ITEMS_INVALID', message, line === undefined ? {} : { line });

/** The format a file name implies (`.csv`, `.jsonl`/`.ndjson`), else undefined. */
export function formatOf(fileName: string): ItemsFormat | undefined {
  const lower = fileName.toLowerCase();
  if (lower.endsWith('.csv')) return 'csv';
  if (lower.endsWith('.jsonl') || lower.endsWith('.ndjson')) return 'jsonl';
  return undefined;
}

const stripBom = (text: string) => (text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);

/**
 * RFC 4180 CSV: a header row of unique, non-empty column names, then one item per row; fields may
 * be quoted (`"a, ""b"""`, newlines inside quotes); CRLF or LF; a leading BOM and blank lines are
 * ignored. Every row has as many fields as the header. An empty cell leaves the field out (an
 * optional input stays unset); cells are strings here, typed by the bot's input schema in
 * `typeCsvItems`.
 */
export function parseCsv(text: string): ParsedItem[] {
  const rows = csvRows(stripBom(text));
  const header = rows.shift();
  if (!header) throw invalid('the CSV file has no header row');
  const names = header.fields.map((f) => f.trim());
  names.forEach((name, i) => {
    if (name === '') throw invalid(`the CSV header has an empty column name (column ${i + 1})`, header.line);
    if (names.indexOf(name) !== i) throw invalid(`the CSV header names column ${JSON.stringify(name)} twice`, header.line);
  });
  return rows.map(({ line, fields }) => {
    if (fields.length !== names.length) throw invalid(`line ${line} has ${fields.length} fields, the header ${names.length}`, line);
    const item: Record<string, unknown> = {};
    names.forEach((name, i) => {
      if (fields[i] !== '') item[name] = fields[i];
    });
    return { line, item };
  });
}

/** The non-blank records of a CSV text and the line each starts on. */
function csvRows(text: string): { line: number; fields: string[] }[] {
  const rows: { line: number; fields: string[] }[] = [];
  let line = 1;
  let i = 0;
  while (i < text.length) {
    const start = line;
    const fields: string[] = [];
    let field = '';
    let quotedField = false;
    let atFieldStart = true;
    let ended = false;
    while (i < text.length && !ended) {
      const c = text[i]!;
      if (atFieldStart && c === '"') {
        quotedField = true;
        atFieldStart = false;
        i++;
        // A quoted field: up to the closing quote; "" is one quote.
        for (;;) {
          if (i >= text.length) throw invalid(`line ${start}: a quoted field is not closed`, start);
          const q = text[i]!;
          if (q === '"') {
            if (text[i + 1] === '"') {
              field += '"';
              i += 2;
              continue;
            }
            i++;
            break;
          }
          if (q === '\n') line++;
          field += q;
          i++;
        }
        const next = text[i];
        if (next !== undefined && next !== ',' && next !== '\n' && !(next === '\r' && text[i + 1] === '\n')) {
          throw invalid(`line ${line}: text after a closing quote`, line);
        }
        continue;
      }
      if (c === ',') {
        fields.push(field);
        field = '';
        quotedField = false;
        atFieldStart = true;
        i++;
      } else if (c === '\n' || (c === '\r' && text[i + 1] === '\n')) {
        i += c === '\r' ? 2 : 1;
        ended = true;
      } else if (c === '"') {
        throw invalid(`line ${line}: a quote inside an unquoted field`, line);
      } else if (c === '\r') {
        throw invalid(`line ${line}: a bare carriage return`, line);
      } else {
        field += c;
        atFieldStart = false;
        i++;
      }
    }
    fields.push(field);
    const blank = fields.length === 1 && fields[0] === '' && !quotedField;
    if (!blank) rows.push({ line: start, fields });
    line++;
  }
  return rows;
}

/** JSON Lines: one JSON object per non-blank line; CRLF and a leading BOM are accepted. */
export function parseJsonl(text: string): ParsedItem[] {
  const items: ParsedItem[] = [];
  stripBom(text)
    .split('\n')
    .forEach((raw, index) => {
      const line = index + 1;
      const source = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
      if (source.trim() === '') return;
      let value: unknown;
      try {
        value = JSON.parse(source);
      } catch {
        throw invalid(`line ${line} is not valid JSON`, line);
      }
      if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(`line ${line} is not a JSON object`, line);
      items.push({ line, item: value as Record<string, unknown> });
    });
  return items;
}

/** Parses `text` as `format`; at least one item, at most `BATCH_MAX_ITEMS`. */
export function parseItems(format: ItemsFormat, text: string): ParsedItem[] {
  const items = format === 'csv' ? parseCsv(text) : parseJsonl(text);
  if (items.length === 0) throw invalid(`the ${format.toUpperCase()} file holds no items`);
  checkItemCount(items.length);
  return items;
}

export function checkItemCount(count: number): void {
  if (count > BATCH_MAX_ITEMS)
    throw new OrderlyError('ORDERLY_E_BATCH_TOO_MANY_ITEMS', `a batch holds at most ${BATCH_MAX_ITEMS} items; this one has ${count}`, {
      count,
      max: BATCH_MAX_ITEMS,
    });
}

/** The column types a CSV cell is parsed to: what the bot's input schema declares for the field. */
export interface ColumnTypes {
  properties: Readonly<Record<string, { type: 'string' | 'number' | 'integer' | 'boolean'; format?: string | undefined }>>;
}

const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
const INTEGER = /^[+-]?\d+$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

const isCalendarDate = (text: string) => {
  const m = DATE.exec(text);
  if (!m) return false;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
};

/**
 * CSV cells are text; the bot's input schema says what each column holds. Numbers (`12`, `-3.5`,
 * `1e3`), integers, booleans (`true`/`false`, any case) and dates (`format: "date"`, a real
 * calendar day as YYYY-MM-DD) are parsed or refused here, the whole file before anything is
 * created: the first cell that does not fit is `ORDERLY_E_BATCH_ITEM_TYPE` naming its line and
 * column (never its value). Surrounding spaces are trimmed for numbers, booleans and dates only.
 * Columns the schema does not declare stay text (the schema check then refuses them).
 */
export function typeCsvItems(items: readonly ParsedItem[], schema: ColumnTypes): ParsedItem[] {
  return items.map(({ line, item }) => {
    const typed: Record<string, unknown> = {};
    for (const [column, cell] of Object.entries(item)) {
      const field = Object.hasOwn(schema.properties, column) ? schema.properties[column] : undefined;
      typed[column] = field === undefined || typeof cell !== 'string' ? cell : typeCell(cell, field, line, column);
    }
    return { line, item: typed };
  });
}

function typeCell(cell: string, field: ColumnTypes['properties'][string], line: number, column: string): unknown {
  const refuse = (expected: string) =>
    new OrderlyError('ORDERLY_E_BATCH_ITEM_TYPE', `line ${line}, column ${JSON.stringify(column)}: not ${expected}`, { line, column, expected });
  const text = cell.trim();
  switch (field.type) {
    case 'number': {
      const n = Number(text);
      if (!NUMBER.test(text) || !Number.isFinite(n)) throw refuse('a number');
      return n;
    }
    case 'integer': {
      const n = Number(text);
      if (!INTEGER.test(text) || !Number.isSafeInteger(n)) throw refuse('an integer');
      return n;
    }
    case 'boolean': {
      const lower = text.toLowerCase();
      if (lower !== 'true' && lower !== 'false') throw refuse('a boolean (true or false)');
      return lower === 'true';
    }
    case 'string':
      if (field.format === 'date') {
        if (!isCalendarDate(text)) throw refuse('a date (YYYY-MM-DD)');
        return text;
      }
      return cell;
  }
}
