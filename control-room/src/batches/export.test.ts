import { csvCell, csvHeader, exportLine, ExportRow } from '@orderly/shared';

const row = (over: Partial<ExportRow> = {}): ExportRow => ({
  position: 1,
  line: 2,
  key: 'ZZB000001',
  runId: '00000000-0000-4000-8000-000000000001',
  status: 'succeeded',
  errorCode: null,
  result: { eligible: true },
  ...over,
});

describe('CSV cells', () => {
  test.each([
    ['plain', 'plain'],
    ['a,b', '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    ['two\nlines', '"two\nlines"'],
    ['cr\r', '"cr\r"'],
  ])('%j is quoted as RFC 4180 says', (value, cell) => {
    expect(csvCell(value)).toBe(cell);
  });

  test.each(['=HYPERLINK("x")', '+1+2', '-2+3', '@SUM(A1)', '\tcmd', '\rcmd'])('%j, a formula to a spreadsheet, is prefixed', (value) => {
    const cell = csvCell(value);
    const unquoted = cell.startsWith('"') ? cell.slice(1, -1).replace(/""/g, '"') : cell;
    expect(unquoted).toBe(`'${value}`);
  });

  test('null is an empty cell, numbers are written as they are', () => {
    expect(csvCell(null)).toBe('');
    expect(csvCell(42)).toBe('42');
  });
});

describe('export lines', () => {
  test('CSV: the header, then one record per item with the result as JSON', () => {
    expect(csvHeader()).toBe('position,line,key,run_id,status,error_code,result\r\n');
    expect(exportLine('csv', row())).toBe('1,2,ZZB000001,00000000-0000-4000-8000-000000000001,succeeded,,"{""eligible"":true}"\r\n');
    expect(exportLine('csv', row({ line: null, key: null, status: 'failed', errorCode: 'ORDERLY_E_BOT_FAILED', result: null }))).toBe(
      '1,,,00000000-0000-4000-8000-000000000001,failed,ORDERLY_E_BOT_FAILED,\r\n',
    );
  });

  test('a key that reads as a formula is neutralised in CSV, kept as it is in JSONL', () => {
    expect(exportLine('csv', row({ key: '=1+1' })).split(',')[2]).toBe("'=1+1");
    expect(JSON.parse(exportLine('jsonl', row({ key: '=1+1' })))).toMatchObject({ key: '=1+1' });
  });

  test('JSONL: one JSON object a line', () => {
    const line = exportLine('jsonl', row({ result: undefined }));
    expect(line.endsWith('\n')).toBe(true);
    expect(JSON.parse(line)).toEqual({ ...row(), result: null });
  });
});
