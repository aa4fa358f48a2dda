import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CleanEdgeCache, createRedactor, SegmentMemo, type Detector } from './redactor';
import { applyMasks, mergeSpans } from './types';
import { prng } from './corpus/generate';

const SECRET = 'fake-S3cret"with\\quote';
const NAME = 'Zorblax McTestface';

describe('createRedactor', () => {
  it('masks each span with its label, never a partial value', () => {
    const r = createRedactor({ secrets: ['hvs.FAKEtoken123'] });
    expect(r.redact('token hvs.FAKEtoken123 for SSN 123-45-6789')).toBe('token [SECRET] for SSN [SSN]');
  });

  it('merges overlapping spans into one mask, the declared label winning', () => {
    const r = createRedactor({ phi: [{ field: 'ssn', value: '123-45-6789' }] });
    expect(r.scan('SSN 123-45-6789.')).toEqual([{ start: 4, end: 15, label: 'PHI' }]);
    expect(
      mergeSpans([
        { start: 0, end: 5, label: 'ZIP' },
        { start: 3, end: 9, label: 'ADDRESS' },
        { start: 9, end: 10, label: 'DATE' },
      ]),
    ).toEqual([
      { start: 0, end: 9, label: 'ADDRESS' },
      { start: 9, end: 10, label: 'DATE' },
    ]);
    expect(applyMasks('abcdefghij', [{ start: 2, end: 4, label: 'PHI' }])).toBe('ab[PHI]efghij');
  });

  it('can run the value layer alone', () => {
    const r = createRedactor({ phi: [{ field: 'name', value: NAME }], patterns: false });
    expect(r.redact(`${NAME} 123-45-6789`)).toBe('[PHI] 123-45-6789');
  });

  it('fails closed: a failing detector makes redact throw instead of returning the raw text', () => {
    const failing: Detector = {
      name: 'boom',
      scan: () => {
        throw new Error('detector bug');
      },
    };
    const r = createRedactor({ detectors: [failing] });
    expect(() => r.redact('SSN 123-45-6789')).toThrow('detector bug');
    expect(() => r.redactJsonLine('{"msg":"x"}')).toThrow('detector bug');
  });

  it('redacts nested values, keys and numbers that hold PHI', () => {
    const r = createRedactor({ secrets: [SECRET] });
    expect(r.redactValue({ a: [`x ${SECRET}`, { phone: 2125550101, n: 42 }], 'SSN 123-45-6789': true })).toEqual({
      a: ['x [SECRET]', { phone: '[PHONE]', n: 42 }],
      'SSN [SSN]': true,
    });
  });
});

describe('redactJsonLine', () => {
  const r = createRedactor({ secrets: [SECRET], phi: [{ field: 'name', value: NAME }] });
  const line = (obj: Record<string, unknown>): string => JSON.stringify({ level: 'info', time: '2024-05-01T12:00:00.000Z', pid: 4242, ...obj });

  it.each([
    ['a string field', { msg: 'SSN 123-45-6789 checked' }, ['123-45-6789']],
    ['a declared name', { patient: NAME }, [NAME]],
    ['a secret with a quote and a backslash', { detail: `token=${SECRET}` }, [SECRET, JSON.stringify(SECRET).slice(1, -1)]],
    ['a number that is a phone number', { phone: 2125550101 }, ['2125550101']],
    ['a number that is an NPI', { npi: 1234567893 }, ['1234567893']],
    ['an SSN after an escaped newline', { stack: 'Error: bad\n123-45-6789 at x' }, ['123-45-6789']],
    ['PHI in a key', { 'member ZQX123456789': 1 }, ['ZQX123456789']],
    ['a censored key holding a string', { password: 'fake-pass-1' }, ['fake-pass-1']],
    ['a censored key holding an object', { input: { memberId: 'QQ1234', nested: [1, 2] } }, ['QQ1234']],
    ['unicode escapes around PHI', { msg: 'caf\u00e9 \u2028 123-45-6789 \u0001' }, ['123-45-6789']],
  ])('%s: the result is valid JSON without the value', (_name, obj, values) => {
    const out = r.redactJsonLine(line(obj));
    expect(() => JSON.parse(out) as unknown).not.toThrow();
    for (const v of values as string[]) expect(out).not.toContain(v);
    expect(out).toMatch(/\[(SSN|PHI|SECRET|PHONE|NPI|HEALTH_PLAN|REDACTED)\]/);
  });

  it("keeps the logger's own timestamp and the message", () => {
    const out = JSON.parse(r.redactJsonLine(line({ msg: 'step completed', at: '2024-05-01T12:00:00.000Z' }))) as Record<string, unknown>;
    expect(out.time).toBe('2024-05-01T12:00:00.000Z');
    expect(out.msg).toBe('step completed');
    expect(out.at).toBe('[DATE]');
  });

  it('leaves a clean line untouched (the same string)', () => {
    const clean = line({ runId: '3b241101-e2bb-4255-8caf-4136c566a962', attempt: 1, msg: 'step completed' });
    expect(r.redactJsonLine(clean)).toBe(clean);
  });

  it('redacts a line that is not JSON as text', () => {
    expect(r.redactJsonLine('plain SSN 123-45-6789')).toBe('plain SSN [SSN]');
  });
});

describe('the clean-edge cache never changes a result', () => {
  const texts = readFileSync(join(__dirname, '../../fixtures/redaction/corpus.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { text: string }).text);

  it('on pino-shaped lines with PHI in bindings, fields and messages', () => {
    const rnd = prng(3);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
    // No `"` in the declared values: a quote would turn the cache off and make this test vacuous.
    const declared = {
      secrets: ['hvs.FAKEtoken-0123'],
      phi: [
        { field: 'name', value: NAME },
        { field: 'memberId', value: 'ZQX123456789' },
      ],
    };
    const cached = createRedactor(declared);
    // Any extra detector turns the cache off: this one finds nothing.
    const reference = createRedactor({ ...declared, detectors: [{ name: 'none', scan: () => undefined }] });
    const children = [
      { runId: '3b241101-e2bb-4255-8caf-4136c566a962', bot: 'eligibility-check', segment: 'east', attempt: 1 },
      { runId: '9c0f7e10-52aa-4d1b-9d0e-2b1f7a4c9e11', bot: 'claim-status', patient: pick(texts) },
      { reqId: 'req-1', route: '/api/runs' },
    ];
    const messages = ['step completed', 'request completed', pick(texts), 'eligibility checked'];
    let changed = 0;
    for (let n = 0; n < 3000; n++) {
      const child = pick(children);
      const fields: Record<string, unknown> = {};
      const k = Math.floor(rnd() * 3);
      for (let j = 0; j < k; j++)
        fields[pick(['step', 'detail', 'note', 'err', 'count', 'phone'])] =
          rnd() < 0.5 ? pick([...texts, 'hvs.FAKEtoken-0123', NAME]) : Math.floor(rnd() * 1e10);
      if (rnd() < 0.1) fields.stack = `Error: ${pick(texts)}\n    at x (/app/a.js:1:2)`;
      const text = JSON.stringify({ level: 'info', time: new Date(1714567890000 + n).toISOString(), pid: 77, ...child, ...fields, msg: pick(messages) });
      const a = cached.redactJsonLine(text);
      expect(a).toBe(reference.redactJsonLine(text));
      if (a !== text) changed++;
    }
    // The lines did carry PHI, so the comparison was not vacuous.
    expect(changed).toBeGreaterThan(500);
  });
});

describe('CleanEdgeCache', () => {
  const pre = '{"level":"info","time":"2024-05-01T12:00:00.000Z","pid":7,';
  const bindings = '"runId":"3b241101-e2bb-4255-8caf-4136c566a962","bot":"eligibility-check",';
  const lineWith = (middle: string, msg = 'step completed'): string => `${pre}${bindings}${middle},"msg":"${msg}"}`;

  it('learns the shared bindings and the message, outside any mask', () => {
    const cache = new CleanEdgeCache(true);
    const a = lineWith('"n":1');
    const b = lineWith('"n":2');
    cache.learn(a, pre.length, pre.length, a.length, []);
    cache.learn(b, pre.length, pre.length, b.length, []);
    const c = lineWith('"note":"SSN 123-45-6789"');
    expect(cache.prefixAt(c, pre.length)).toBe(bindings.length);
    expect(cache.suffixAt(c, pre.length + bindings.length)).toBe(',"msg":"step completed"}'.length);
  });

  it('does not learn edges with a mask or a backslash in them, nor when disabled', () => {
    const cache = new CleanEdgeCache(true);
    const a = lineWith('"n":1', 'SSN 123-45-6789');
    const spans = [{ start: a.indexOf('123-45'), end: a.indexOf('123-45') + 11, label: 'SSN' as const }];
    cache.learn(a, pre.length, pre.length, a.length, spans);
    cache.learn(a, pre.length, pre.length, a.length, spans);
    expect(cache.suffixAt(a, pre.length)).toBe(0);
    const b = lineWith('"n":1', 'line\\nbreak');
    cache.learn(b, pre.length, pre.length, b.length, []);
    expect(cache.suffixAt(b, pre.length)).toBe(0);
    const off = new CleanEdgeCache(false);
    off.learn(lineWith('"n":1'), pre.length, pre.length, lineWith('"n":1').length, []);
    off.learn(lineWith('"n":2'), pre.length, pre.length, lineWith('"n":2').length, []);
    expect(off.prefixAt(lineWith('"n":3'), pre.length)).toBe(0);
  });

  it('is off when a declared value holds a quote, and that value is still masked in JSON', () => {
    const r = createRedactor({ secrets: [SECRET] });
    for (let n = 0; n < 3; n++) {
      const out = r.redactJsonLine(lineWith(`"n":${n}`, `x ${SECRET}`));
      expect(out).not.toContain(JSON.stringify(SECRET).slice(1, -1));
      expect(() => JSON.parse(out) as unknown).not.toThrow();
    }
  });
});

describe('SegmentMemo', () => {
  const pre = '{"level":"info","time":"2024-05-01T12:00:00.000Z","pid":7,';

  it('gives the masks of a repeated middle at the offsets of the line asking', () => {
    const memo = new SegmentMemo();
    const a = `${pre}"runId":"a1","note":"SSN 123-45-6789"}`;
    const from = pre.length + '"runId":"a1",'.length;
    const spans = [{ start: a.indexOf('123-45'), end: a.indexOf('123-45') + 11, label: 'SSN' as const }];
    memo.set(a, from, a.length, spans);
    // Same middle and 40 characters before it, at another offset (a longer preamble).
    const b = `{"x":1,${a.slice(1)}`;
    const got = memo.get(b, from + 6, b.length);
    expect(got?.map((s) => b.slice(s.start, s.end))).toEqual(['123-45-6789']);
    // The text before the middle is part of the key: another cue there is another entry.
    expect(memo.get(a.replace('"runId":"a1"', '"runId":"b2"'), from, a.length)).toBeUndefined();
  });

  it('does not remember middles too close to the start, too long, or with masks reaching before the key', () => {
    const memo = new SegmentMemo();
    const short = '{"note":"SSN 123-45-6789"}';
    memo.set(short, 1, short.length, []);
    expect(memo.get(short, 1, short.length)).toBeUndefined();
    const long = `${pre}"note":"${'x'.repeat(600)}"}`;
    memo.set(long, pre.length, long.length, []);
    expect(memo.get(long, pre.length, long.length)).toBeUndefined();
    const reach = `${pre}"note":"x"}`;
    memo.set(reach, pre.length, reach.length, [{ start: 2, end: 8, label: 'EMAIL' }]);
    expect(memo.get(reach, pre.length, reach.length)).toBeUndefined();
  });

  it('never changes a result: the same line after different lines is redacted the same', () => {
    const r = createRedactor();
    const reference = createRedactor({ detectors: [{ name: 'none', scan: () => undefined }] });
    const bindings = ['"runId":"r1","bot":"b",', '"runId":"r2","kind":"fax",', '"reqId":"q","patient":"Dr. Ama Okafor",'];
    const middles = ['"number":"212-555-0188"', '"step":"goto"', '"note":"seen by Okafor"', '"dob":"03/04/1961"', '"n":1'];
    const rnd = prng(5);
    for (let n = 0; n < 400; n++) {
      const line = `${pre}${bindings[Math.floor(rnd() * 3)]}${middles[Math.floor(rnd() * 5)]},"msg":"step completed"}`;
      expect(r.redactJsonLine(line)).toBe(reference.redactJsonLine(line));
    }
  });
});

describe('redactPrefix', () => {
  const secret = 'fake-lease-pw-0123456789';
  const r = createRedactor({ secrets: [secret], patterns: false });

  it('finds a value that straddles the cut, which cutting first would leave as an unknown fragment', () => {
    const line = 'x'.repeat(95) + secret + ' tail';
    // Cut first, then redacted: the fragment is not the value, and is kept as it is.
    expect(r.redact(line.slice(0, 100))).toContain(secret.slice(0, 5));
    // Redacted first: the mask does not fit before the cut, so it is left out, not cut.
    const out = r.redactPrefix(line, 100);
    expect(out).toBe('x'.repeat(95));
    expect(out).not.toContain(secret.slice(0, 3));
  });

  it('keeps a mask that fits and never cuts inside one', () => {
    const line = 'x'.repeat(10) + secret + 'y'.repeat(100);
    expect(r.redactPrefix(line, 18)).toBe('x'.repeat(10) + '[SECRET]');
    expect(r.redactPrefix(line, 17)).toBe('x'.repeat(10));
    expect(r.redactPrefix(line, 30)).toBe('x'.repeat(10) + '[SECRET]' + 'y'.repeat(12));
    for (let max = 0; max < 40; max++) expect(r.redactPrefix(line, max).length).toBeLessThanOrEqual(max);
  });

  it('returns short text redacted and whole, and does not split a surrogate pair', () => {
    expect(r.redactPrefix(`a ${secret} b`, 4000)).toBe('a [SECRET] b');
    expect(r.redactPrefix('ab\u{1F600}cd', 3)).toBe('ab');
  });
});
