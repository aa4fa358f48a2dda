import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hasCode } from '../errors';
import { corpusJsonl, generateCorpus } from './corpus/generate';
import { evaluateRedaction, formatEvalReport, parseEvalJsonl, scanEvalLines } from './eval';
import { createRedactor } from './redactor';
import { applyMasks, PATTERN_LABELS } from './types';

const CORPUS_FILE = join(__dirname, '../../fixtures/redaction/corpus.jsonl');
const corpusText = readFileSync(CORPUS_FILE, 'utf8');
const corpus = parseEvalJsonl(corpusText);

describe('the committed corpus', () => {
  it('is what the generator produces (regenerate it after changing the generator)', () => {
    expect(corpusText).toBe(corpusJsonl(generateCorpus()));
  });

  it('is small, covers every shaped label and has clean lines with look-alikes', () => {
    expect(corpus.length).toBeLessThanOrEqual(500);
    const labels = new Set(corpus.flatMap((l) => l.spans.map((s) => s.label)));
    for (const label of PATTERN_LABELS) expect(labels).toContain(label);
    expect(corpus.filter((l) => l.spans.length === 0).length).toBeGreaterThanOrEqual(50);
    expect(corpus.filter((l) => l.declared !== undefined).length).toBeGreaterThanOrEqual(20);
  });
});

describe('redaction figures on the corpus', () => {
  const report = evaluateRedaction(corpus);

  it.each([...PATTERN_LABELS])('span recall of %s is at least 0.98', (label) => {
    const figures = report.labels.find((f) => f.label === label);
    expect(figures?.spans).toBeGreaterThanOrEqual(10);
    expect(figures?.spanRecall).toBeGreaterThanOrEqual(0.98);
  });

  it('overall precision is at least 0.9', () => {
    expect(report.overall.precision).toBeGreaterThanOrEqual(0.9);
  });

  it('declared values are all caught', () => {
    for (const label of ['NAME', 'MEMBER_ID']) expect(report.labels.find((f) => f.label === label)?.spanRecall).toBe(1);
  });

  it('the figures can fail: without masks recall is 0 and precision undefined', () => {
    const none = evaluateRedaction(
      corpus,
      corpus.map(() => ({ spans: [] })),
    );
    expect(none.overall.spanRecall).toBe(0);
    expect(none.overall.precision).toBeNull();
    const everything = evaluateRedaction(
      corpus,
      corpus.map((l) => ({ spans: [{ start: 0, end: l.text.length, label: 'PHI' as const }] })),
    );
    expect(everything.overall.spanRecall).toBe(1);
    expect(everything.overall.precision).toBeLessThan(0.5);
  });
});

describe('evaluateRedaction arithmetic', () => {
  it('counts characters and spans as documented', () => {
    // "SSN 123-45-6789, MRN 00123456": gold spans of 11 and 8 characters.
    const lines = parseEvalJsonl(
      JSON.stringify({
        text: 'SSN 123-45-6789, MRN 00123456 ok',
        spans: [
          { start: 4, end: 15, label: 'SSN' },
          { start: 21, end: 29, label: 'MRN' },
        ],
      }),
    );
    // Mask all of the SSN, half of the MRN, and 3 characters that are not PHI.
    const report = evaluateRedaction(lines, [
      {
        spans: [
          { start: 4, end: 15, label: 'SSN' },
          { start: 25, end: 32, label: 'MRN' },
        ],
      },
    ]);
    expect(report.overall).toMatchObject({ spans: 2, spansMasked: 1, chars: 19, charsMasked: 15, maskedChars: 18, maskedPhiChars: 15 });
    expect(report.overall.spanRecall).toBe(0.5);
    expect(report.overall.charRecall).toBeCloseTo(15 / 19);
    expect(report.overall.precision).toBeCloseTo(15 / 18);
    expect(report.labels.find((f) => f.label === 'MRN')).toMatchObject({ spans: 1, spansMasked: 0, chars: 8, charsMasked: 4 });
    expect(report.masks.find((f) => f.label === 'MRN')?.precision).toBeCloseTo(4 / 7);
    expect(formatEvalReport(report)).toMatch(/overall\s+2\s+0\.500\s+0\.789/);
  });
});

describe('scanEvalLines', () => {
  it('gives JavaScript string offsets that reproduce the redaction, also after astral characters', () => {
    const lines = [...corpus, ...parseEvalJsonl(JSON.stringify({ text: '😀 émoji first: SSN 123-45-6789 and 𝒳 MRN 00123456' }))];
    const scans = scanEvalLines(lines);
    lines.forEach((line, i) => {
      const spans = scans[i]?.spans ?? [];
      const r = line.declared ? createRedactor({ phi: line.declared.map((value) => ({ field: 'declared', value })) }) : createRedactor();
      expect(applyMasks(line.text, spans)).toBe(r.redact(line.text));
    });
    const last = lines[lines.length - 1] as { text: string };
    expect((scans[scans.length - 1]?.spans ?? []).map((s) => last.text.slice(s.start, s.end))).toEqual(['123-45-6789', '00123456']);
  });
});

describe('parseEvalJsonl', () => {
  const expectInvalid = (content: string, line: number): void => {
    let caught: unknown;
    try {
      parseEvalJsonl(content);
    } catch (err) {
      caught = err;
    }
    expect(hasCode(caught, 'ORDERLY_E_REDACTION_INPUT_INVALID')).toBe(true);
    expect((caught as Error).message).toMatch(new RegExp(`^line ${line}:`));
    expect((caught as { details: { line: number } }).details.line).toBe(line);
  };

  it('skips blank lines', () => {
    expect(parseEvalJsonl('\n{"text":"a"}\n\n{"text":"b","spans":[]}\n')).toHaveLength(2);
  });
  it('names the line that is not JSON', () => expectInvalid('{"text":"a"}\n\n{nope', 3));
  it('names the line without text', () => expectInvalid('{"spans":[]}', 1));
  it('names the line with a span outside its text', () => expectInvalid('{"text":"a"}\n{"text":"abc","spans":[{"start":1,"end":9,"label":"SSN"}]}', 2));
  it('names the line with an empty span', () => expectInvalid('{"text":"abc","spans":[{"start":2,"end":2,"label":"SSN"}]}', 1));
  it('names the line whose declared value is too short', () => {
    let caught: unknown;
    try {
      scanEvalLines(parseEvalJsonl('{"text":"a"}\n{"text":"abc","declared":["ab"]}'));
    } catch (err) {
      caught = err;
    }
    expect(hasCode(caught, 'ORDERLY_E_REDACTION_VALUE_TOO_SHORT')).toBe(true);
    expect((caught as Error).message).toMatch(/^line 2:/);
  });
});
