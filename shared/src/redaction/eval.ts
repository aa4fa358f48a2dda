import { z } from 'zod';
import { OrderlyError, hasCode } from '../errors';
import { createRedactor, type Redactor } from './redactor';
import { PATTERN_LABELS, type Span } from './types';

/**
 * `orderly redaction eval` and `scan`: figures anyone can rerun on a JSONL file of texts with
 * their PHI spans. `scan` prints only what would be masked, so a scorer of one's own can check
 * the figures `eval` prints.
 */

export const EvalSpan = z.strictObject({
  start: z.number().int().min(0),
  end: z.number().int().min(0),
  label: z.string().min(1).max(64),
});
export type EvalSpan = z.infer<typeof EvalSpan>;

export const EvalLine = z
  .object({
    text: z.string(),
    spans: z.array(EvalSpan).default([]),
    /** Values declared for this text (as a run's PHI input fields would be): turns on the value layer. */
    declared: z.array(z.string()).optional(),
  })
  .superRefine((line, ctx) => {
    line.spans.forEach((s, i) => {
      if (s.end <= s.start || s.end > line.text.length) {
        ctx.addIssue({ code: 'custom', path: ['spans', i], message: `span [${s.start}, ${s.end}) is empty or outside the text (length ${line.text.length})` });
      }
    });
  });
export type EvalLine = z.infer<typeof EvalLine>;

/** Parses JSONL; blank lines are skipped, any other bad line is an error naming its number. */
export function parseEvalJsonl(content: string): EvalLine[] {
  const out: EvalLine[] = [];
  const lines = content.split('\n');
  lines.forEach((raw, index) => {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '') return;
    let json: unknown;
    try {
      json = JSON.parse(line);
    } catch {
      throw new OrderlyError('ORDERLY_E_REDACTION_INPUT_INVALID', `line ${index + 1}: not valid JSON`, { line: index + 1 });
    }
    const parsed = EvalLine.safeParse(json);
    if (!parsed.success) {
      const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(line)'}: ${i.message}`);
      throw new OrderlyError('ORDERLY_E_REDACTION_INPUT_INVALID', `line ${index + 1}: ${problems.join('; ')}`, { line: index + 1, problems });
    }
    out.push(parsed.data);
  });
  return out;
}

/** The redactor for one line: patterns always, declared values when the line has them. */
function redactorFor(line: EvalLine, index: number, shared: Redactor): Redactor {
  if (!line.declared || line.declared.length === 0) return shared;
  try {
    return createRedactor({ phi: line.declared.map((value, i) => ({ field: `declared[${i}]`, value })) });
  } catch (err) {
    if (hasCode(err, 'ORDERLY_E_REDACTION_VALUE_TOO_SHORT')) {
      throw new OrderlyError('ORDERLY_E_REDACTION_VALUE_TOO_SHORT', `line ${index + 1}: ${(err as Error).message}`, { line: index + 1 });
    }
    throw err;
  }
}

/** What the redactor would mask on each line (merged spans, JavaScript string offsets). */
export function scanEvalLines(lines: readonly EvalLine[]): { spans: Span[] }[] {
  const shared = createRedactor();
  return lines.map((line, i) => ({ spans: redactorFor(line, i, shared).scan(line.text) }));
}

export interface LabelFigures {
  label: string;
  spans: number;
  spansMasked: number;
  chars: number;
  charsMasked: number;
  /** Share of this label's characters that were masked (null when it has none). */
  charRecall: number | null;
  /** Share of this label's spans masked entirely. */
  spanRecall: number | null;
}

export interface MaskFigures {
  label: string;
  maskedChars: number;
  phiChars: number;
  /** Share of the characters masked with this label that were PHI. */
  precision: number | null;
}

export interface EvalReport {
  lines: number;
  cleanLines: number;
  /** Clean lines (no spans) where something was masked anyway. */
  cleanLinesMasked: number;
  labels: LabelFigures[];
  overall: LabelFigures & { maskedChars: number; maskedPhiChars: number; precision: number | null };
  masks: MaskFigures[];
}

const ratio = (a: number, b: number): number | null => (b === 0 ? null : a / b);

/** Scores the redactor against the spans of every line. */
export function evaluateRedaction(lines: readonly EvalLine[], predicted = scanEvalLines(lines)): EvalReport {
  const byLabel = new Map<string, LabelFigures>();
  const byMask = new Map<string, MaskFigures>();
  const total: LabelFigures = { label: 'overall', spans: 0, spansMasked: 0, chars: 0, charsMasked: 0, charRecall: null, spanRecall: null };
  let maskedChars = 0;
  let maskedPhiChars = 0;
  let cleanLines = 0;
  let cleanLinesMasked = 0;

  lines.forEach((line, i) => {
    const n = line.text.length;
    const gold = new Uint8Array(n);
    const masked = new Uint8Array(n);
    for (const s of line.spans) gold.fill(1, s.start, s.end);
    const spans = predicted[i]?.spans ?? [];
    for (const s of spans) masked.fill(1, Math.max(0, s.start), Math.min(n, s.end));

    for (const s of line.spans) {
      const f = byLabel.get(s.label) ?? { label: s.label, spans: 0, spansMasked: 0, chars: 0, charsMasked: 0, charRecall: null, spanRecall: null };
      byLabel.set(s.label, f);
      let hit = 0;
      for (let k = s.start; k < s.end; k++) hit += masked[k] as number;
      const len = s.end - s.start;
      f.spans++;
      f.chars += len;
      f.charsMasked += hit;
      if (hit === len) f.spansMasked++;
    }
    let goldChars = 0;
    let goldMasked = 0;
    for (let k = 0; k < n; k++) {
      if (gold[k] === 1) {
        goldChars++;
        goldMasked += masked[k] as number;
      }
    }
    total.chars += goldChars;
    total.charsMasked += goldMasked;
    total.spans += line.spans.length;
    total.spansMasked += line.spans.filter((s) => masked.subarray(s.start, s.end).every((x) => x === 1)).length;

    for (const s of spans) {
      const f = byMask.get(s.label) ?? { label: s.label, maskedChars: 0, phiChars: 0, precision: null };
      byMask.set(s.label, f);
      for (let k = Math.max(0, s.start); k < Math.min(n, s.end); k++) {
        f.maskedChars++;
        f.phiChars += gold[k] as number;
      }
    }
    for (let k = 0; k < n; k++) {
      if (masked[k] === 1) {
        maskedChars++;
        maskedPhiChars += gold[k] as number;
      }
    }
    if (line.spans.length === 0) {
      cleanLines++;
      if (spans.length > 0) cleanLinesMasked++;
    }
  });

  const finish = (f: LabelFigures): LabelFigures => ({ ...f, charRecall: ratio(f.charsMasked, f.chars), spanRecall: ratio(f.spansMasked, f.spans) });
  const order = (label: string): number => {
    const i = (PATTERN_LABELS as readonly string[]).indexOf(label);
    return i < 0 ? PATTERN_LABELS.length : i;
  };
  return {
    lines: lines.length,
    cleanLines,
    cleanLinesMasked,
    labels: [...byLabel.values()].map(finish).sort((a, b) => order(a.label) - order(b.label) || a.label.localeCompare(b.label)),
    overall: { ...finish(total), maskedChars, maskedPhiChars, precision: ratio(maskedPhiChars, maskedChars) },
    masks: [...byMask.values()].map((f) => ({ ...f, precision: ratio(f.phiChars, f.maskedChars) })).sort((a, b) => order(a.label) - order(b.label)),
  };
}

const fmt = (x: number | null): string => (x === null ? '   n/a' : x.toFixed(3).padStart(6));

/** The report as a table for a terminal. */
export function formatEvalReport(report: EvalReport): string {
  const rows = [
    `${'label'.padEnd(12)} ${'spans'.padStart(6)} ${'span recall'.padStart(11)} ${'char recall'.padStart(11)}`,
    ...report.labels.map((f) => `${f.label.padEnd(12)} ${String(f.spans).padStart(6)} ${fmt(f.spanRecall).padStart(11)} ${fmt(f.charRecall).padStart(11)}`),
    `${'overall'.padEnd(12)} ${String(report.overall.spans).padStart(6)} ${fmt(report.overall.spanRecall).padStart(11)} ${fmt(report.overall.charRecall).padStart(11)}`,
    '',
    `precision (share of masked characters that were PHI): ${fmt(report.overall.precision).trim()} (${report.overall.maskedPhiChars} of ${report.overall.maskedChars})`,
    `clean lines: ${report.cleanLines}, with a mask: ${report.cleanLinesMasked}; lines: ${report.lines}`,
    '',
    `${'mask'.padEnd(12)} ${'chars'.padStart(6)} ${'precision'.padStart(11)}`,
    ...report.masks.map((f) => `${f.label.padEnd(12)} ${String(f.maskedChars).padStart(6)} ${fmt(f.precision).padStart(11)}`),
  ];
  return rows.join('\n') + '\n';
}
