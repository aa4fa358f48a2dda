/**
 * Labels and spans shared by every redaction layer. A span is a half-open range of JavaScript
 * string units (UTF-16 code units, what `String.prototype.slice` counts), so offsets written by
 * `orderly redaction scan` can be checked by any scorer that indexes strings the same way.
 */

/** Labels of the pattern layer: the HIPAA Safe Harbor identifiers that have a recognisable shape. */
export const PATTERN_LABELS = [
  'SSN',
  'PHONE',
  'FAX',
  'EMAIL',
  'DATE',
  'AGE',
  'ZIP',
  'ADDRESS',
  'MRN',
  'ACCOUNT',
  'HEALTH_PLAN',
  'MBI',
  'NPI',
  'CARD',
  'LICENSE',
  'VEHICLE',
  'DEVICE',
  'URL',
  'IP',
  'ID',
] as const;
export type PatternLabel = (typeof PATTERN_LABELS)[number];

/** Labels of the entity layer: people and places, found by word lists and context rather than shape. */
export const ENTITY_LABELS = ['NAME', 'LOCATION'] as const;
export type EntityLabel = (typeof ENTITY_LABELS)[number];

/** Labels of the value layer: what the run declared (secrets it read, PHI fields of its input). */
export const VALUE_LABELS = ['SECRET', 'PHI'] as const;
export type ValueLabel = (typeof VALUE_LABELS)[number];

/** The censor of structured fields: pino's `redact` censor and the JSON-key rule use the same word. */
export const STRUCTURED_LABEL = 'REDACTED';

export type RedactionLabel = PatternLabel | EntityLabel | ValueLabel | typeof STRUCTURED_LABEL;

/** A masked range: `text.slice(start, end)` is what the mask `[label]` replaces. */
export interface Span {
  start: number;
  end: number;
  label: RedactionLabel;
}

/**
 * When spans of different layers overlap they are merged into one mask; the label shown is the
 * one that says most about why it was masked: declared values first (they are certain), then the
 * structured censor, then shapes. A phone keyword outranks the NPI checksum a phone number may
 * pass by chance.
 */
const PRIORITY: readonly RedactionLabel[] = [
  'SECRET',
  'PHI',
  'REDACTED',
  'CARD',
  'PHONE',
  'FAX',
  'NPI',
  'MBI',
  'SSN',
  'VEHICLE',
  'EMAIL',
  'URL',
  'IP',
  'DATE',
  'AGE',
  'ADDRESS',
  'ZIP',
  'MRN',
  'HEALTH_PLAN',
  'ACCOUNT',
  'LICENSE',
  'DEVICE',
  'ID',
  'LOCATION',
  'NAME',
];
const RANK: ReadonlyMap<RedactionLabel, number> = new Map(PRIORITY.map((label, i) => [label, i]));

function rank(label: RedactionLabel): number {
  return RANK.get(label) ?? PRIORITY.length;
}

/** Sorts spans and merges the overlapping ones; the result is ordered and disjoint. */
export function mergeSpans(spans: readonly Span[]): Span[] {
  if (spans.length === 0) return [];
  const sorted = spans.length === 1 ? [...spans] : [...spans].sort((a, b) => a.start - b.start || b.end - a.end);
  const out: Span[] = [];
  let current: Span | undefined;
  for (const span of sorted) {
    if (span.end <= span.start) continue;
    if (current !== undefined && span.start < current.end) {
      if (span.end > current.end) current.end = span.end;
      if (rank(span.label) < rank(current.label)) current.label = span.label;
      continue;
    }
    current = { start: span.start, end: span.end, label: span.label };
    out.push(current);
  }
  return out;
}

/** Replaces each span of a merged, ordered list with `[LABEL]`. */
export function applyMasks(text: string, merged: readonly Span[]): string {
  if (merged.length === 0) return text;
  let out = '';
  let at = 0;
  for (const span of merged) {
    out += text.slice(at, span.start) + '[' + span.label + ']';
    at = span.end;
  }
  return out + text.slice(at);
}
