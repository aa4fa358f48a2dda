import { OrderlyError } from '../errors';
import { plausibleDate } from './checksums';
import type { Span, ValueLabel } from './types';

// ioredis 6 defines `class VerbatimString extends String`; once any String subclass exists in the
// process, V8 stops inlining `s.charCodeAt(i)` call sites (~5x slower in these per-character loops).
// Calling the method captured here (`charCodeAt.call(s, i)`) stays fast under that deopt.
const charCodeAt = String.prototype.charCodeAt;

/**
 * The value layer: every secret read for a run and every value of a PHI input field is masked
 * wherever it appears, in the encodings it travels in (URL, base64 at each byte alignment, JSON,
 * HTML, case changes, other date formats, ids with other separators).
 *
 * Matching is case-insensitive on a lower-cased copy of the text: over-masking a case variant of
 * a secret costs nothing, missing one leaks it. Candidate positions come from a table of the first
 * three characters of every variant, so the cost per line does not grow with the number of
 * variants.
 */

/** Shorter values would mask common words and numbers everywhere; they are refused instead. */
export const MIN_VALUE_LENGTH = 4;
/** Parts derived from a declared name (`Jane`, `Roe`) are masked as whole words from this length. */
const MIN_NAME_PART_LENGTH = 3;

export interface DeclaredPhi {
  /** The input field the value came from: named in errors, never the value itself. */
  field: string;
  value: string;
}

export interface DeclaredValues {
  secrets?: readonly string[];
  phi?: readonly DeclaredPhi[];
}

interface Needle {
  /** Lower-cased text to find. */
  text: string;
  label: ValueLabel;
  /** Must not continue a run of letters or digits on either side (derived name parts, dates). */
  bounded: boolean;
  /** A space in `text` matches any run of whitespace (names wrap and get double spaces). */
  flexSpace: boolean;
}

interface Form {
  text: string;
  bounded: boolean;
  /** Also register base64 and hex of this form (only for the value itself, not derived forms). */
  binary: boolean;
}

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'] as const;

function tooShort(what: string, details: Record<string, string | number>): OrderlyError {
  return new OrderlyError('ORDERLY_E_REDACTION_VALUE_TOO_SHORT', `${what} is shorter than ${MIN_VALUE_LENGTH} characters and cannot be masked safely`, {
    ...details,
    minimum: MIN_VALUE_LENGTH,
  });
}

const pad2 = (n: number): string => String(n).padStart(2, '0');
function ordinal(n: number): string {
  const t = n % 100;
  if (t >= 11 && t <= 13) return `${n}th`;
  return `${n}${['th', 'st', 'nd', 'rd'][n % 10] ?? 'th'}`;
}

/** Reads a date of birth in the formats a form would hold; undefined when it is not one. */
export function parseDateValue(value: string): { y: number; m: number; d: number } | undefined {
  const v = value.trim();
  let y: number, m: number, d: number;
  let r = /^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[T ][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?$/.exec(v);
  if (r) {
    [y, m, d] = [Number(r[1]), Number(r[2]), Number(r[3])];
  } else if ((r = /^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$/.exec(v))) {
    const a = Number(r[1]);
    const b = Number(r[2]);
    y = Number(r[3]);
    // US order unless the first number cannot be a month.
    [m, d] = a > 12 ? [b, a] : [a, b];
  } else if ((r = /^(\d{4})(\d{2})(\d{2})$/.exec(v))) {
    [y, m, d] = [Number(r[1]), Number(r[2]), Number(r[3])];
  } else if ((r = /^([A-Za-z]+)\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})$/.exec(v))) {
    m = monthNumber(r[1] ?? '');
    [d, y] = [Number(r[2]), Number(r[3])];
  } else if ((r = /^(\d{1,2})(?:st|nd|rd|th)?[\s-]+([A-Za-z]+)\.?,?[\s-]+(\d{4})$/.exec(v))) {
    m = monthNumber(r[2] ?? '');
    [d, y] = [Number(r[1]), Number(r[3])];
  } else {
    return undefined;
  }
  return plausibleDate(y, m, d) ? { y, m, d } : undefined;
}

function monthNumber(word: string): number {
  const w = word.toLowerCase();
  if (w.length < 3) return 0;
  return MONTHS.findIndex((name) => name.toLowerCase().startsWith(w) || (w === 'sept' && name === 'September')) + 1;
}

/** The same calendar date in every format a log, a form or a portal is likely to print. */
export function dateFormats(date: { y: number; m: number; d: number }): string[] {
  const { y, m, d } = date;
  const mm = pad2(m),
    dd = pad2(d),
    yy = pad2(y % 100);
  const month = MONTHS[m - 1] as string;
  const mon = month.slice(0, 3);
  const mons = m === 9 ? [mon, 'Sept'] : [mon];
  const out = [
    `${y}-${mm}-${dd}`,
    `${y}/${mm}/${dd}`,
    `${y}.${mm}.${dd}`,
    `${y}${mm}${dd}`,
    `${y}-${m}-${d}`,
    `${mm}/${dd}/${y}`,
    `${m}/${d}/${y}`,
    `${mm}-${dd}-${y}`,
    `${m}-${d}-${y}`,
    `${mm}.${dd}.${y}`,
    `${mm}${dd}${y}`,
    `${mm}/${dd}/${yy}`,
    `${m}/${d}/${yy}`,
    `${mm}-${dd}-${yy}`,
    `${dd}/${mm}/${y}`,
    `${d}/${m}/${y}`,
    `${dd}.${mm}.${y}`,
    `${d}.${m}.${y}`,
    `${dd}-${mm}-${y}`,
    `${month} ${d}, ${y}`,
    `${month} ${d} ${y}`,
    `${month} ${dd}, ${y}`,
    `${month} ${ordinal(d)}, ${y}`,
    `${month} ${ordinal(d)} ${y}`,
    `${d} ${month} ${y}`,
    `${d} ${month}, ${y}`,
    `${ordinal(d)} ${month} ${y}`,
    `${ordinal(d)} of ${month} ${y}`,
    `${ordinal(d)} of ${month}, ${y}`,
  ];
  for (const mo of mons) {
    out.push(
      `${mo} ${d}, ${y}`,
      `${mo}. ${d}, ${y}`,
      `${mo} ${d} ${y}`,
      `${mo}. ${d} ${y}`,
      `${mo} ${dd}, ${y}`,
      `${mo} ${ordinal(d)}, ${y}`,
      `${d} ${mo} ${y}`,
      `${dd} ${mo} ${y}`,
      `${d} ${mo}. ${y}`,
      `${dd}-${mo}-${y}`,
      `${d}-${mo}-${y}`,
      `${dd}${mo}${y}`,
      `${dd}-${mo}-${yy}`,
    );
  }
  return out;
}

const NAME_RE = /^[\p{L}\p{M}][\p{L}\p{M}'\u2019.-]*(?:\s+[\p{L}\p{M}][\p{L}\p{M}'\u2019.-]*)+$/u;
const ID_RE = /^[A-Za-z0-9(+][A-Za-z0-9\s.\-/_()#+]*$/;

/** The forms of one declared value before encoding. */
function formsOf(value: string, kind: 'secret' | 'phi'): Form[] {
  const t = value.trim();
  const forms: Form[] = [{ text: t, bounded: false, binary: true }];
  const normalized = t.replace(/\r\n?/g, '\n');
  if (normalized !== t) forms.push({ text: normalized, bounded: false, binary: true });
  // Each line of a multi-line value (a PEM key, an address) can be logged on its own.
  const lines = normalized.split('\n').map((l) => l.trim());
  if (lines.length > 1) {
    for (const line of lines) if (line.length >= MIN_VALUE_LENGTH) forms.push({ text: line, bounded: false, binary: true });
  }
  if (kind === 'phi') {
    const date = parseDateValue(t);
    if (date) for (const f of dateFormats(date)) forms.push({ text: f, bounded: true, binary: false });
    if (NAME_RE.test(t) && !date) {
      const words = t.split(/\s+/);
      const first = words[0] as string;
      const last = words[words.length - 1] as string;
      const given = words.slice(0, -1).join(' ');
      for (const f of [
        words.join(' '),
        `${last}, ${given}`,
        `${last},${given}`,
        `${last} ${given}`,
        `${last}, ${first}`,
        `${first} ${last}`,
        `${last}^${first}`,
        `${last}^${given.replace(/\s+/g, '^')}`,
      ]) {
        forms.push({ text: f, bounded: false, binary: false });
      }
      for (const w of words) {
        const part = w.replace(/[.,]+$/, '');
        if ([...part].length >= MIN_NAME_PART_LENGTH) forms.push({ text: part, bounded: true, binary: false });
      }
    }
  }
  return forms;
}

const htmlVariants = (s: string): string[] => {
  const base = s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  return [
    base.replace(/"/g, '&quot;').replace(/'/g, '&#39;'),
    base.replace(/"/g, '&quot;').replace(/'/g, '&#x27;'),
    base.replace(/"/g, '&#34;').replace(/'/g, '&apos;'),
  ];
};

const strictUriEncode = (s: string): string => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${charCodeAt.call(c, 0).toString(16).toUpperCase()}`);

/**
 * Base64 of `value` as it appears inside a longer encoded blob: for each of the three byte
 * alignments, the characters that depend only on the value's bytes (the first and last partial
 * characters depend on the neighbours and are left out). Plus the value encoded on its own.
 */
export function base64Cores(value: string): string[] {
  const bytes = Buffer.from(value, 'utf8');
  const out: string[] = [];
  for (const align of [0, 1, 2]) {
    const buf = Buffer.concat([Buffer.alloc(align), bytes]);
    const bits = buf.length * 8;
    for (const encoding of ['base64', 'base64url'] as const) {
      const b64 = buf.toString(encoding).replace(/=+$/, '');
      const start = align === 0 ? 0 : align === 1 ? 2 : 3;
      const end = bits % 6 === 0 ? b64.length : b64.length - 1;
      const core = b64.slice(start, end);
      if (core.length >= MIN_VALUE_LENGTH) out.push(core);
    }
  }
  out.push(bytes.toString('base64'), bytes.toString('base64').replace(/=+$/, ''), bytes.toString('base64url'));
  return out;
}

/** Every encoded spelling of one form. */
function encodingsOf(form: Form, kind: 'secret' | 'phi'): string[] {
  const s = form.text;
  const json = JSON.stringify(s).slice(1, -1);
  const out = [
    s,
    encodeURIComponent(s),
    encodeURIComponent(s).replace(/%20/g, '+'),
    strictUriEncode(s),
    encodeURI(s),
    json,
    json.replace(/[\u007f-\uffff]/g, (c) => `\\u${charCodeAt.call(c, 0).toString(16).padStart(4, '0')}`),
    JSON.stringify(json).slice(1, -1),
    ...htmlVariants(s),
  ];
  if (form.binary) {
    out.push(...base64Cores(s));
    if (kind === 'secret') out.push(Buffer.from(s, 'utf8').toString('hex'));
  }
  return out;
}

/** Lower-cases without changing the length, so offsets found in the copy hold in the original. */
function lowerSameLength(text: string): string {
  const lower = text.toLowerCase();
  if (lower.length === text.length) return lower;
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text.charAt(i);
    const l = c.toLowerCase();
    out += l.length === 1 ? l : c;
  }
  return out;
}

const trigramKey = (a: number, b: number, c: number): number => ((a << 10) ^ (b << 5) ^ c) & 0xffff;
const isWordChar = (ch: string): boolean => /[\p{L}\p{N}]/u.test(ch);
const isSpaceCode = (c: number): boolean => c === 32 || c === 9 || c === 10 || c === 13;

/** A compiled set of declared values. */
export class ValueMatcher {
  private readonly present = new Uint8Array(65536);
  private readonly buckets = new Map<number, Needle[]>();
  private readonly flexIds: RegExp | undefined;
  private readonly flexLabels: ValueLabel[];
  private readonly quoted: boolean;
  /** How many encoded variants are registered (diagnostics and tests). */
  readonly needleCount: number;

  constructor(values: DeclaredValues) {
    const needles = new Map<string, Needle>();
    const flex: { pattern: string; label: ValueLabel }[] = [];
    const add = (raw: string, form: Form, label: ValueLabel): void => {
      const text = lowerSameLength(raw);
      if (text.length < 3) return;
      const key = `${text}\u0000${form.bounded ? 1 : 0}`;
      const existing = needles.get(key);
      // One spelling declared both as a secret and as PHI is reported as the secret.
      if (existing) {
        if (label === 'SECRET') existing.label = label;
        return;
      }
      needles.set(key, { text, label, bounded: form.bounded, flexSpace: text.includes(' ') });
    };
    const register = (value: string, kind: 'secret' | 'phi', label: ValueLabel): void => {
      for (const form of formsOf(value, kind)) for (const enc of encodingsOf(form, kind)) add(enc, form, label);
      // Ids, phone numbers, SSNs: the same characters with any separators (`123 45 6789`, `ZQX-1234`).
      const t = value.trim();
      const alnum = t.replace(/[^A-Za-z0-9]/g, '');
      if (ID_RE.test(t) && alnum.length >= MIN_VALUE_LENGTH && /\d.*\d/.test(alnum)) {
        flex.push({ pattern: alnum.toLowerCase().split('').join('[\\s.\\-/_()]{0,3}'), label });
      }
    };

    assertMaskable(values);
    for (const secret of values.secrets ?? []) if (secret.trim().length > 0) register(secret, 'secret', 'SECRET');
    for (const { value } of values.phi ?? []) if (value.trim().length > 0) register(value, 'phi', 'PHI');

    for (const needle of needles.values()) {
      const key = trigramKey(charCodeAt.call(needle.text, 0), charCodeAt.call(needle.text, 1), charCodeAt.call(needle.text, 2));
      this.present[key] = 1;
      const bucket = this.buckets.get(key);
      if (bucket) bucket.push(needle);
      else this.buckets.set(key, [needle]);
    }
    for (const bucket of this.buckets.values()) bucket.sort((a, b) => b.text.length - a.text.length);
    this.needleCount = needles.size + flex.length;
    this.quoted = [...needles.values()].some((nd) => nd.text.includes('"'));
    this.flexLabels = flex.map((f) => f.label);
    this.flexIds = flex.length > 0 ? new RegExp(flex.map((f) => `(${f.pattern})`).join('|'), 'g') : undefined;
  }

  /** True when nothing was declared: callers skip the layer. */
  get empty(): boolean {
    return this.needleCount === 0;
  }

  /** True when a variant contains `"`: such a value could span JSON structure. */
  get hasQuote(): boolean {
    return this.quoted;
  }

  /** Appends the spans of declared values found in `text` that start in [from, to). */
  scan(text: string, out: Span[], from = 0, to = text.length): void {
    if (this.needleCount === 0) return;
    const lower = lowerSameLength(text);
    const n = lower.length;
    const last = Math.min(to, n - 2);
    if (last > from) {
      const present = this.present;
      let a = charCodeAt.call(lower, from);
      let b = charCodeAt.call(lower, from + 1);
      for (let i = from; i < last; i++) {
        const c = charCodeAt.call(lower, i + 2);
        const key = trigramKey(a, b, c);
        if (present[key] === 1) this.matchAt(text, lower, i, key, out);
        a = b;
        b = c;
      }
    }
    const flex = this.flexIds;
    if (flex) {
      flex.lastIndex = from;
      for (let m = flex.exec(lower); m !== null && m.index < to; m = flex.exec(lower)) {
        let g = 1;
        while (g < m.length && m[g] === undefined) g++;
        out.push({ start: m.index, end: m.index + m[0].length, label: this.flexLabels[g - 1] ?? 'PHI' });
        flex.lastIndex = m.index + 1;
      }
    }
  }

  private matchAt(text: string, lower: string, i: number, key: number, out: Span[]): void {
    const bucket = this.buckets.get(key);
    if (!bucket) return;
    for (const needle of bucket) {
      const end = needle.flexSpace ? flexMatch(lower, i, needle.text) : lower.startsWith(needle.text, i) ? i + needle.text.length : -1;
      if (end < 0) continue;
      if (needle.bounded && !boundedAt(text, i, end)) continue;
      out.push({ start: i, end, label: needle.label });
      // The bucket is sorted longest first; shorter needles here would only be inside this one.
      return;
    }
  }
}

/** Matches `needle` at `i`, where a space in the needle stands for any run of whitespace. */
function flexMatch(lower: string, i: number, needle: string): number {
  let p = i;
  for (let k = 0; k < needle.length; k++) {
    const c = charCodeAt.call(needle, k);
    if (c === 32) {
      if (!isSpaceCode(charCodeAt.call(lower, p))) return -1;
      while (p < lower.length && isSpaceCode(charCodeAt.call(lower, p))) p++;
    } else {
      if (charCodeAt.call(lower, p) !== c) return -1;
      p++;
    }
  }
  return p;
}

/** A derived part counts only as a whole word: `Ann` must not mask `Annual`. */
function boundedAt(text: string, start: number, end: number): boolean {
  const first = text.charAt(start);
  const last = text.charAt(end - 1);
  const before = start > 0 ? text.charAt(start - 1) : '';
  const after = end < text.length ? text.charAt(end) : '';
  const sameKind = (x: string, y: string): boolean => x !== '' && isWordChar(x) && isWordChar(y) && /\d/.test(x) === /\d/.test(y);
  return !sameKind(before, first) && !sameKind(after, last);
}

/**
 * The PHI values of a run input: the fields the manifest declares, flattened to strings (numbers
 * become their decimal form, nested objects and arrays give one value per string leaf).
 */
/**
 * Refuses values too short to mask safely (a one-letter one would mask every "a"); empty ones have
 * nothing to leak. Cheap: the control room checks every run's input with it at creation.
 */
export function assertMaskable(values: DeclaredValues): void {
  (values.secrets ?? []).forEach((secret, index) => {
    const length = secret.trim().length;
    if (length > 0 && length < MIN_VALUE_LENGTH) throw tooShort(`secret #${index + 1}`, { index: index + 1, length });
  });
  for (const { field, value } of values.phi ?? []) {
    const length = value.trim().length;
    if (length > 0 && length < MIN_VALUE_LENGTH) throw tooShort(`the value of PHI field "${field}"`, { field, length });
  }
}

export function declaredPhiFromInput(fields: readonly string[], input: Readonly<Record<string, unknown>>): DeclaredPhi[] {
  const out: DeclaredPhi[] = [];
  const visit = (field: string, value: unknown, depth: number): void => {
    if (value === null || value === undefined || depth > 8) return;
    if (typeof value === 'string') out.push({ field, value });
    else if (typeof value === 'number' || typeof value === 'bigint') out.push({ field, value: String(value) });
    else if (Array.isArray(value)) value.forEach((v, i) => visit(`${field}[${i}]`, v, depth + 1));
    else if (typeof value === 'object') for (const [k, v] of Object.entries(value)) visit(`${field}.${k}`, v, depth + 1);
  };
  for (const field of fields) visit(field, input[field], 0);
  return out;
}
