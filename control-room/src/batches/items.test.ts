import { isOrderlyError } from '@orderly/shared';
import { itemKeys } from './batches';
import { BATCH_MAX_ITEMS, formatOf, parseCsv, parseItems, parseJsonl, typeCsvItems } from '@orderly/shared';

/** The code (and details) an action throws, or 'no error'. */
function refusal(fn: () => unknown): { code: string; details: Record<string, unknown> } | 'no error' {
  try {
    fn();
    return 'no error';
  } catch (err) {
    if (!isOrderlyError(err)) throw err;
    return { code: err.code, details: { ...err.details } };
  }
}

describe('CSV items', () => {
  test('a header and rows; quoted fields with commas, doubled quotes and newlines', () => {
    const text = 'memberId,note,dateOfBirth\nZZT1,"a, b",1900-01-01\nZZT2,"say ""hi""\nsecond line",1900-01-02\n';
    expect(parseCsv(text)).toEqual([
      { line: 2, item: { memberId: 'ZZT1', note: 'a, b', dateOfBirth: '1900-01-01' } },
      { line: 3, item: { memberId: 'ZZT2', note: 'say "hi"\nsecond line', dateOfBirth: '1900-01-02' } },
    ]);
  });

  test('a BOM, CRLF line ends, blank lines and no final newline', () => {
    const text = '\uFEFFmemberId,dateOfBirth\r\n\r\nZZT1,1900-01-01\r\n\r\nZZT2,1900-01-02';
    expect(parseCsv(text)).toEqual([
      { line: 3, item: { memberId: 'ZZT1', dateOfBirth: '1900-01-01' } },
      { line: 5, item: { memberId: 'ZZT2', dateOfBirth: '1900-01-02' } },
    ]);
  });

  test('an empty cell leaves the field out; a quoted empty cell too; header names are trimmed', () => {
    expect(parseCsv(' a , b ,c\n1,,""\n')).toEqual([{ line: 2, item: { a: '1' } }]);
  });

  test('a line after a multi-line quoted field keeps its own line number', () => {
    expect(parseCsv('a,b\n"x\ny\nz",1\nq,2\n').map((r) => r.line)).toEqual([2, 5]);
  });

  test.each([
    ['an unclosed quote', 'a,b\n"x,1\n', 2],
    ['text after a closing quote', 'a,b\n"x"y,1\n', 2],
    ['a quote inside an unquoted field', 'a,b\nx"y,1\n', 2],
    ['a row with too few fields', 'a,b\n1,2\n3\n', 3],
    ['a row with too many fields', 'a,b\n1,2,3\n', 2],
    ['a bare carriage return', 'a,b\n1,2\r3,4\n', 2],
    ['a duplicated column name', 'a,b,a\n1,2,3\n', 1],
    ['an empty column name', 'a,,b\n1,2,3\n', 1],
  ])('%s is ORDERLY_E_BATCH_ITEMS_INVALID naming the line', (_name, text, line) => {
    expect(refusal(() => parseCsv(text))).toEqual({ code: 'ORDERLY_E_BATCH_ITEMS_INVALID', details: { line } });
  });

  test('errors never echo a cell value', () => {
    try {
      parseCsv('memberId,b\nZZT-SECRET-1,"x"y\n');
      throw new Error('expected a refusal');
    } catch (err) {
      expect((err as Error).message).not.toContain('ZZT-SECRET-1');
    }
  });

  test('a header with no rows, and an empty file, hold no items', () => {
    expect(refusal(() => parseItems('csv', 'a,b\n\n'))).toMatchObject({ code: 'ORDERLY_E_BATCH_ITEMS_INVALID' });
    expect(refusal(() => parseItems('csv', ''))).toMatchObject({ code: 'ORDERLY_E_BATCH_ITEMS_INVALID' });
  });
});

describe('JSONL items', () => {
  test('one object a line; BOM, CRLF and blank lines accepted; values keep their JSON types', () => {
    const text = '\uFEFF{"memberId":"ZZT1","count":2}\r\n\r\n{"memberId":"ZZT2","ok":true}\n\n';
    expect(parseJsonl(text)).toEqual([
      { line: 1, item: { memberId: 'ZZT1', count: 2 } },
      { line: 3, item: { memberId: 'ZZT2', ok: true } },
    ]);
  });

  test.each([
    ['malformed JSON', '{"a":1}\n{"a":\n', 2],
    ['an array', '[1,2]\n', 1],
    ['a string', '"x"\n', 1],
    ['null', '{"a":1}\n\nnull\n', 3],
  ])('%s is ORDERLY_E_BATCH_ITEMS_INVALID naming the line', (_name, text, line) => {
    expect(refusal(() => parseJsonl(text))).toEqual({ code: 'ORDERLY_E_BATCH_ITEMS_INVALID', details: { line } });
  });
});

test('too many items is ORDERLY_E_BATCH_TOO_MANY_ITEMS', () => {
  const text = `a\n${Array.from({ length: BATCH_MAX_ITEMS + 1 }, (_, i) => `v${i}`).join('\n')}\n`;
  expect(refusal(() => parseItems('csv', text))).toMatchObject({ code: 'ORDERLY_E_BATCH_TOO_MANY_ITEMS', details: { count: BATCH_MAX_ITEMS + 1 } });
  expect(parseItems('csv', `a\n${Array.from({ length: BATCH_MAX_ITEMS }, (_, i) => `v${i}`).join('\n')}\n`)).toHaveLength(BATCH_MAX_ITEMS);
});

test('the format comes from the file name', () => {
  expect([formatOf('x.CSV'), formatOf('a/b.jsonl'), formatOf('c.ndjson'), formatOf('d.json')]).toEqual(['csv', 'jsonl', 'jsonl', undefined]);
});

describe('item keys', () => {
  const items = parseCsv('memberId,dateOfBirth\nZZT1,1900-01-01\nZZT2,1900-01-01\n');

  test('the key column value, or the whole item', () => {
    expect(itemKeys(items, 'memberId')).toEqual(['ZZT1', 'ZZT2']);
    const whole = itemKeys(items, undefined);
    expect(new Set(whole).size).toBe(2);
  });

  test('a key column no item has, and an item without a value in it, are ORDERLY_E_BATCH_KEY_MISSING', () => {
    expect(refusal(() => itemKeys(items, 'id'))).toMatchObject({ code: 'ORDERLY_E_BATCH_KEY_MISSING' });
    expect(refusal(() => itemKeys(parseCsv('id,x\n1,a\n,b\n'), 'id'))).toMatchObject({ code: 'ORDERLY_E_BATCH_KEY_MISSING', details: { line: 3 } });
  });

  test('two items with one key, or two identical items without a key column, are ORDERLY_E_BATCH_KEY_DUPLICATE naming both lines', () => {
    expect(refusal(() => itemKeys(parseCsv('id,x\n1,a\n2,b\n1,c\n'), 'id'))).toMatchObject({
      code: 'ORDERLY_E_BATCH_KEY_DUPLICATE',
      details: { line: 4, firstLine: 2 },
    });
    expect(refusal(() => itemKeys(parseJsonl('{"a":1,"b":2}\n{"b":2,"a":1}\n'), undefined))).toMatchObject({
      code: 'ORDERLY_E_BATCH_KEY_DUPLICATE',
      details: { line: 2, firstLine: 1 },
    });
  });
});

describe('CSV cells typed by the input schema', () => {
  const schema = {
    properties: {
      amount: { type: 'number' as const },
      count: { type: 'integer' as const },
      urgent: { type: 'boolean' as const },
      due: { type: 'string' as const, format: 'date' },
      note: { type: 'string' as const },
    },
  };
  const typed = (cells: Record<string, string>, line = 2) => typeCsvItems([{ line, item: cells }], schema)[0]!.item;
  const refusal = (cells: Record<string, string>, line = 2) => {
    try {
      typed(cells, line);
    } catch (err) {
      return isOrderlyError(err) ? { code: err.code, message: err.message, details: err.details } : String(err);
    }
    return 'not refused';
  };

  test('numbers, integers, booleans and dates become what the schema says; text stays text', () => {
    expect(typed({ amount: ' -3.5 ', count: '007', urgent: 'TRUE', due: '2024-02-29', note: ' 12 ' })).toEqual({
      amount: -3.5,
      count: 7,
      urgent: true,
      due: '2024-02-29',
      note: ' 12 ',
    });
    expect(typed({ amount: '1e3', urgent: 'false' })).toEqual({ amount: 1000, urgent: false });
    expect(typed({ other: 'x' })).toEqual({ other: 'x' });
  });

  test.each<[Record<string, string>, string]>([
    [{ amount: '12,5' }, 'a number'],
    [{ amount: 'NaN' }, 'a number'],
    [{ amount: '1e999' }, 'a number'],
    [{ count: '1.5' }, 'an integer'],
    [{ count: '99999999999999999999' }, 'an integer'],
    [{ urgent: 'yes' }, 'a boolean (true or false)'],
    [{ due: '2023-02-29' }, 'a date (YYYY-MM-DD)'],
    [{ due: '03/01/1900' }, 'a date (YYYY-MM-DD)'],
  ])('%j is refused with its line and column, never its value', (cells, expected) => {
    const column = Object.keys(cells)[0]!;
    const refused = refusal(cells, 7);
    expect(refused).toEqual({
      code: 'ORDERLY_E_BATCH_ITEM_TYPE',
      message: `line 7, column ${JSON.stringify(column)}: not ${expected}`,
      details: { line: 7, column, expected },
    });
    expect(JSON.stringify(refused)).not.toContain(Object.values(cells)[0]!);
  });
});
