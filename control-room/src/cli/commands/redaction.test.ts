import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasCode } from '@orderly/shared';
import { redactionCommand } from './redaction';

const dir = mkdtempSync(join(tmpdir(), 'orderly-redaction-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

async function run(args: string[]): Promise<string> {
  let out = '';
  await redactionCommand((text) => {
    out += text;
  }).parseAsync(args, { from: 'user' });
  return out;
}

// Fake values; offsets in JavaScript string units.
const LINES = [
  { text: 'SSN 123-45-6789 on file', spans: [{ start: 4, end: 15, label: 'SSN' }] },
  { text: 'Spoke with Zorblax McTestface', spans: [{ start: 11, end: 29, label: 'NAME' }], declared: ['Zorblax McTestface'] },
  { text: 'release 2.14.1 shipped to 3 sites', spans: [] },
];
const jsonl = LINES.map((l) => JSON.stringify(l)).join('\n') + '\n';

describe('orderly redaction', () => {
  it('has eval and scan with descriptions for --help', () => {
    const command = redactionCommand();
    expect(command.name()).toBe('redaction');
    const names = command.commands.map((c) => c.name());
    expect(names).toEqual(['eval', 'scan']);
    for (const sub of command.commands) {
      expect(sub.description().length).toBeGreaterThan(20);
      expect(sub.helpInformation()).toContain('<file>');
    }
    expect(command.commands[0]?.helpInformation()).toContain('--json');
  });

  it('eval prints figures per label and overall', async () => {
    const out = await run(['eval', file('a.jsonl', jsonl)]);
    expect(out).toMatch(/^SSN\s+1\s+1\.000\s+1\.000$/m);
    expect(out).toMatch(/^NAME\s+1\s+1\.000\s+1\.000$/m);
    expect(out).toMatch(/^overall\s+2\s+1\.000\s+1\.000$/m);
    expect(out).toMatch(/precision .*1\.000/);
  });

  it('eval --json prints the report as JSON', async () => {
    const report = JSON.parse(await run(['eval', '--json', file('b.jsonl', jsonl)])) as { overall: { spanRecall: number; precision: number }; lines: number };
    expect(report.lines).toBe(3);
    expect(report.overall.spanRecall).toBe(1);
    expect(report.overall.precision).toBe(1);
  });

  it('scan prints one JSON line of spans per input line', async () => {
    const out = (await run(['scan', file('c.jsonl', jsonl)])).trimEnd().split('\n');
    expect(out.map((l) => JSON.parse(l) as unknown)).toEqual([
      { spans: [{ start: 4, end: 15, label: 'SSN' }] },
      { spans: [{ start: 11, end: 29, label: 'PHI' }] },
      { spans: [] },
    ]);
  });

  it('rejects a bad line with its number, and an unreadable file', async () => {
    const bad = file('d.jsonl', `${JSON.stringify(LINES[0])}\n{"text": 5}\n`);
    await expect(run(['eval', bad])).rejects.toMatchObject({
      code: 'ORDERLY_E_REDACTION_INPUT_INVALID',
      message: expect.stringMatching(/^line 2:/) as unknown,
    });
    const missing = await run(['scan', join(dir, 'missing.jsonl')]).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(hasCode(missing, 'ORDERLY_E_REDACTION_INPUT_INVALID')).toBe(true);
    expect((missing as Error).message).toMatch(/ENOENT/);
  });
});
