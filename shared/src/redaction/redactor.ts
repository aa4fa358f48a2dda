import { scanEntities } from './entities';
import { scanPatterns } from './patterns';
import { applyMasks, mergeSpans, type Span } from './types';
import { ValueMatcher, type DeclaredPhi } from './values';

// ioredis 6 defines `class VerbatimString extends String`; once any String subclass exists in the
// process, V8 stops inlining `s.charCodeAt(i)` call sites (~5x slower in these per-character loops).
// Calling the method captured here (`charCodeAt.call(s, i)`) stays fast under that deopt.
const charCodeAt = String.prototype.charCodeAt;

/** A source of spans beyond the built-in layers (a site's own shapes; tests inject failing ones). */
export interface Detector {
  readonly name: string;
  /** Appends spans found in `text` starting at or after `from`. May throw: the caller fails closed. */
  scan(text: string, from: number, out: Span[]): void;
}

export interface RedactorOptions {
  /** Every secret value read for the run. */
  secrets?: readonly string[];
  /** Every value of the run's input fields that the manifest declares as PHI. */
  phi?: readonly DeclaredPhi[];
  /** The pattern layer; on unless turned off to measure the value layer alone. */
  patterns?: boolean;
  /** The entity layer (people and places); on with the pattern layer unless turned off. */
  entities?: boolean;
  /** Extra detectors run after the built-in layers. */
  detectors?: readonly Detector[];
}

export interface Redactor {
  /** The text with every span masked as `[LABEL]`. Throws if a layer fails: callers drop, never pass through. */
  redact(text: string): string;
  /** The merged spans `redact` would mask, in JavaScript string offsets. */
  scan(text: string): Span[];
  /**
   * The redacted text cut to at most `max` characters. The whole text is redacted before the cut,
   * so a value that straddles the cut is still found; the cut never falls inside a mask (a mask
   * that does not fit is left out) nor between the halves of a surrogate pair.
   */
  redactPrefix(text: string, max: number): string;
  /**
   * One serialized JSON log line (without its newline) redacted so that it stays valid JSON:
   * masks inside strings are written in place, a masked number becomes a string.
   */
  redactJsonLine(line: string): string;
  /** A JSON-like value with every string (and every number that holds PHI) redacted, keys too. */
  redactValue(value: unknown): unknown;
}

// pino's own first fields (`{"level":…,"time":…,"pid":…,"hostname":…,`) are written by the
// logger, never by a caller; the pattern layer skips them so the timestamp is not masked as a date.
// Declared values are still looked for in them.
const PINO_PREAMBLE =
  /\{"level":(?:\d{1,3}|"[a-z]{1,10}"),"time":(?:\d{10,16}|"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})"),(?:"pid":\d{1,10},)?(?:"hostname":"[A-Za-z0-9._-]{0,253}",)?/y;
const LOGGER_TIME = /^(?:\d{10,16}|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2}))$/;
const JSON_ESCAPE = /\\(?:u[0-9a-fA-F]{4}|[^])/g;
const TWO_CHAR_ESCAPE = /\\[^]/g;
const blankOut = (m: string): string => (m.length === 2 ? '  ' : ' '.repeat(m.length));

/**
 * Builds the redactor for one run (or, without declared values, for a process). Values too short
 * to mask are refused here with ORDERLY_E_REDACTION_VALUE_TOO_SHORT.
 */
export function createRedactor(options: RedactorOptions = {}): Redactor {
  const values = new ValueMatcher({ secrets: options.secrets, phi: options.phi });
  const usePatterns = options.patterns !== false;
  const useEntities = usePatterns && options.entities !== false;
  const detectors = options.detectors ?? [];

  /** Raw spans: values are looked for in `original`, shapes in `view` (same length), in [from, to). */
  const collect = (original: string, view: string, from: number, patterns: boolean, to = view.length): Span[] => {
    const spans: Span[] = [];
    if (!values.empty) values.scan(original, spans, from, to);
    if (patterns) {
      if (usePatterns) scanPatterns(view, from, to, spans);
      if (useEntities) scanEntities(view, from, to, spans);
      for (const d of detectors) d.scan(view, from, spans);
    }
    return spans;
  };

  const scan = (text: string): Span[] => mergeSpans(collect(text, text, 0, true));
  const redact = (text: string): string => applyMasks(text, scan(text));
  const redactPrefix = (text: string, max: number): string => cutMasked(text, scan(text), max);

  /** A string field, with its key as context (`"mrn": "…"` must still read as an MRN). */
  const redactField = (key: string | undefined, text: string, patterns: boolean): string => {
    if (key === undefined || key.length > 64) return applyMasks(text, mergeSpans(collect(text, text, 0, patterns)));
    const prefix = `${key}: `;
    const joined = prefix + text;
    const spans: Span[] = [];
    for (const s of mergeSpans(collect(joined, joined, 0, patterns))) {
      if (s.end <= prefix.length) continue;
      spans.push({ start: Math.max(0, s.start - prefix.length), end: s.end - prefix.length, label: s.label });
    }
    return applyMasks(text, spans);
  };

  const redactValueIn = (value: unknown, key: string | undefined, depth: number, top: boolean): unknown => {
    if (typeof value === 'string') return redactField(key, value, !(top && key === 'time' && LOGGER_TIME.test(value)));
    if (typeof value === 'number') {
      const text = String(value);
      const out = redactField(key, text, !(top && key === 'time' && LOGGER_TIME.test(text)));
      return out === text ? value : out;
    }
    if (value === null || typeof value !== 'object') return value;
    // Deeper than any log object should be: refuse rather than recurse without bound.
    if (depth > 64) throw new Error('value nested too deeply to redact');
    if (Array.isArray(value)) return value.map((v) => redactValueIn(v, key, depth + 1, false));
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      out[redact(k)] = redactValueIn(v, k, depth + 1, false);
    }
    return out;
  };

  const redactTopLevel = (value: unknown): unknown => {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) return redactValueIn(value, undefined, 0, false);
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[redact(k)] = redactValueIn(v, k, 1, true);
    return out;
  };

  // Lines of one child logger repeat its bindings (`"runId":…,"bot":…,`) and a call site repeats
  // its constant message (`,"msg":"step completed"}`). Such clean edges are remembered and not
  // scanned again; see `CleanEdgeCache` for why that is sound. Extra detectors (whose reach is
  // unknown) and declared values containing `"` turn the cache off.
  const edges = new CleanEdgeCache(detectors.length === 0 && !values.hasQuote);
  // Between its edges a line often repeats too (`"step":"goto"`, a call site's constant fields):
  // the masks found there are remembered with the text they depend on, see `SegmentMemo`.
  const memo = detectors.length === 0 && !values.hasQuote ? new SegmentMemo() : undefined;

  const redactJsonLine = (line: string): string => {
    const c = charCodeAt.call(line, 0);
    if (c !== 123 && c !== 91) return redact(line);
    PINO_PREAMBLE.lastIndex = 0;
    const preamble = PINO_PREAMBLE.test(line) ? PINO_PREAMBLE.lastIndex : 0;
    const escaped = line.indexOf('\\') >= 0;
    // Cached edges hold no backslash, so the escape view below does not change them either.
    const from = preamble + edges.prefixAt(line, preamble);
    const to = line.length - edges.suffixAt(line, from);
    // Escapes are blanked (same length) so that `\n123-45-6789` reads as a boundary, not `n123`.
    // Without `\\` and `\u` every escape is two characters: a plain replace does it.
    const view = !escaped
      ? line
      : line.indexOf('\\\\') < 0 && line.indexOf('\\u') < 0
        ? line.replace(TWO_CHAR_ESCAPE, '  ')
        : line.replace(JSON_ESCAPE, blankOut);
    // Right after the preamble, the 40 characters before the middle hold pino's timestamp: such
    // a key never repeats, so the memo is not asked (its copy of the key would be wasted).
    const memoOn = memo !== undefined && !escaped && (from > preamble || preamble === 0);
    let merged = memoOn ? memo.get(line, from, to) : undefined;
    if (merged === undefined) {
      merged = mergeSpans(collect(line, view, from, true, to));
      if (memoOn) memo.set(line, from, to, merged);
    }
    edges.learn(line, preamble, from, to, merged);
    if (merged.length === 0) return line;

    // Fast path: every mask lies inside one JSON string, so writing it in place keeps the line valid.
    let out = '';
    let at = 0;
    let quotes = 0;
    let safe = !escaped;
    // Quotes are counted by jumping from one to the next with `indexOf` rather than reading every
    // character (per-character reads are slow under the ioredis String subclass deopt, see top).
    let nextQuote = view.indexOf('"');
    for (const span of merged) {
      while (nextQuote >= 0 && nextQuote < span.start) {
        quotes++;
        nextQuote = view.indexOf('"', nextQuote + 1);
      }
      // Inside a string only if no `"` lies in the span itself (`nextQuote` is the first at or after its start).
      const inside = quotes % 2 === 1 && (nextQuote < 0 || nextQuote >= span.end);
      const mask = `[${span.label}]`;
      if (inside) {
        out += line.slice(at, span.start) + mask;
      } else {
        // Outside a string (a number): quote the mask; the parse below checks the result.
        out += line.slice(at, span.start) + `"${mask}"`;
        safe = false;
      }
      at = span.end;
    }
    out += line.slice(at);
    if (safe) return out;
    try {
      JSON.parse(out);
      return out;
    } catch {
      // The masks cut through JSON syntax (an escape, a number): redact field by field instead.
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      // Not JSON to begin with: the text redaction is still fully redacted.
      return redact(line);
    }
    return JSON.stringify(redactTopLevel(parsed));
  };

  return {
    redact,
    scan,
    redactPrefix,
    redactJsonLine,
    redactValue: (value) => redactValueIn(value, undefined, 0, false),
  };
}

/** `applyMasks(text, merged)` cut to `max` characters: only between masks, never inside one. */
function cutMasked(text: string, merged: readonly Span[], max: number): string {
  let out = '';
  let at = 0;
  for (const span of [...merged, undefined]) {
    const plain = text.slice(at, span?.start ?? text.length);
    if (out.length + plain.length >= max) return out + cutPlain(plain, max - out.length);
    out += plain;
    if (span === undefined) return out;
    const mask = '[' + span.label + ']';
    if (out.length + mask.length > max) return out;
    out += mask;
    at = span.end;
  }
  return out;
}

/** The first `n` characters of unmasked text, one fewer if the cut would split a surrogate pair. */
function cutPlain(plain: string, n: number): string {
  if (n <= 0) return '';
  if (n >= plain.length) return plain;
  const last = charCodeAt.call(plain, n - 1);
  return plain.slice(0, last >= 0xd800 && last <= 0xdbff ? n - 1 : n);
}

const MEMO_LOOKBACK = 40;
const MEMO_MAX_TEXT = 512;
const MEMO_ENTRIES = 256;

/**
 * The merged masks of a line's scanned middle [from, to), keyed by the text they can depend on:
 * the middle, the 40 characters before it and the 2 after. No rule looks further: the context
 * checks look back at most 40 characters (a name's cue) and 30 (`fax` before a phone number),
 * the searches back from an `@` or a `?` stop at the `"` that starts the middle of a pino line,
 * and nothing matches across the `,"` that starts a cached suffix (see `CleanEdgeCache`). Only
 * for unescaped lines (the view is the line) and without extra detectors or a declared value
 * holding a `"`, as for the edge cache. Bounded: the oldest entry goes first. Exported for tests.
 */
export class SegmentMemo {
  private readonly entries = new Map<string, readonly Span[]>();

  private static key(line: string, from: number, to: number): string | undefined {
    if (from < MEMO_LOOKBACK || to - from > MEMO_MAX_TEXT) return undefined;
    return line.slice(from - MEMO_LOOKBACK, Math.min(line.length, to + 2));
  }

  /** The merged spans for [from, to) of `line`, in its offsets, if a line with the same text was scanned. */
  get(line: string, from: number, to: number): Span[] | undefined {
    const key = SegmentMemo.key(line, from, to);
    const found = key === undefined ? undefined : this.entries.get(key);
    if (found === undefined) return undefined;
    const base = from - MEMO_LOOKBACK;
    return found.map((s) => ({ start: s.start + base, end: s.end + base, label: s.label }));
  }

  set(line: string, from: number, to: number, merged: readonly Span[]): void {
    const key = SegmentMemo.key(line, from, to);
    const base = from - MEMO_LOOKBACK;
    // A mask that reaches before the key depends on text the key does not hold (only a line
    // that is not shaped like pino's could have one): not remembered.
    if (key === undefined || merged.some((s) => s.start < base)) return;
    if (this.entries.size >= MEMO_ENTRIES) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(
      flat(key),
      merged.map((s) => ({ start: s.start - base, end: s.end - base, label: s.label })),
    );
  }
}

/** A copy that does not keep the line it was sliced from alive (and compares at full speed). */
const flat = (s: string): string => Buffer.from(s, 'utf8').toString('utf8');
const CACHE_SIZE = 8;

/**
 * Clean edges of serialized pino lines: prefixes after the preamble that end with the `,` of a
 * `,"`, and suffixes that start with such a `,`. In a JSON line (pino only writes valid JSON) an
 * unescaped `,"` is always structure, and nothing can match across it: no rule consumes a `,`
 * after the closing `"` of a string or reaches back over one, and no declared value holds a `"`
 * (or the cache is off). So an edge that was found without masks in one line has none in any
 * line it ends or starts, and only the middle needs scanning. Prefixes are learnt from what two
 * consecutive lines share (a child logger's bindings), suffixes from the last field of a line
 * (pino's `"msg"`), always outside any mask. Exported for tests.
 */
export class CleanEdgeCache {
  private readonly prefixes: string[] = [];
  private readonly suffixes: string[] = [];
  private nextPrefix = 0;
  private nextSuffix = 0;
  private prefixHit = 0;
  private last = '';
  private lastFrom = 0;
  private lastHead = 0;

  constructor(private readonly enabled: boolean) {}

  /**
   * Length of a remembered clean prefix of `line` at `from` (0 if none). The one that matched
   * last is tried first: a run logs its lines one after another, so it is nearly always that one,
   * and the other prefixes (of the same length: same bindings, other run ids) are not compared.
   */
  prefixAt(line: string, from: number): number {
    if (!this.enabled) return 0;
    const last = this.prefixes[this.prefixHit];
    if (last !== undefined && charCodeAt.call(line, from + last.length) === 34 && line.startsWith(last, from)) return last.length;
    for (let i = 0; i < this.prefixes.length; i++) {
      const p = this.prefixes[i] as string;
      // Prefixes of one logger differ in a run id somewhere inside: two characters sampled there
      // reject most before the full comparison.
      const a = p.length >> 1;
      const b = (p.length * 3) >> 2;
      if (
        i !== this.prefixHit &&
        charCodeAt.call(line, from + p.length) === 34 &&
        charCodeAt.call(line, from + a) === charCodeAt.call(p, a) &&
        charCodeAt.call(line, from + b) === charCodeAt.call(p, b) &&
        line.startsWith(p, from)
      ) {
        this.prefixHit = i;
        return p.length;
      }
    }
    return 0;
  }

  /** Length of a remembered clean suffix of `line` that starts at or after `from` (0 if none). */
  suffixAt(line: string, from: number): number {
    if (!this.enabled) return 0;
    const n = line.length;
    for (const s of this.suffixes) {
      // The third character from the end (a letter of the message) rejects most suffixes at once.
      if (n - s.length > from && charCodeAt.call(line, n - 3) === charCodeAt.call(s, s.length - 3) && line.endsWith(s)) return s.length;
    }
    return 0;
  }

  /** After a scan of [from, to): learns the clean edges this line shares with the previous one. */
  learn(line: string, preamble: number, from: number, to: number, spans: readonly Span[]): void {
    if (!this.enabled) return;
    let head = line.length;
    let tail = preamble;
    for (const s of spans) {
      if (s.start < head) head = s.start;
      if (s.end > tail) tail = s.end;
    }
    const prev = this.last;
    if (from === preamble && prev !== '') {
      const limit = Math.min(head, preamble + (this.lastHead - this.lastFrom));
      let k = preamble;
      while (k < limit && charCodeAt.call(line, k) === charCodeAt.call(prev, this.lastFrom + (k - preamble))) k++;
      // Edges never hold a backslash (an escape could hide a `"`): stop before the first one.
      const backslash = line.indexOf('\\', preamble);
      if (backslash >= 0 && backslash < k) k = backslash;
      const comma = line.lastIndexOf(',"', k - 2);
      if (comma >= preamble + 16) this.remember(this.prefixes, line.slice(preamble, comma + 1), 'prefix');
    }
    if (to === line.length) {
      // The last field (pino's `"msg"`) is constant per call site: remember it from one clean line.
      // Only the scanned part counts: a suffix reaching back into a cached prefix is never used.
      const comma = line.lastIndexOf(',"');
      if (comma > Math.max(tail, from, line.lastIndexOf('\\')) && line.length - comma >= 8) this.remember(this.suffixes, line.slice(comma), 'suffix');
    }
    this.last = line;
    this.lastFrom = preamble;
    this.lastHead = head;
  }

  private remember(list: string[], edge: string, kind: 'prefix' | 'suffix'): void {
    if (edge.includes('\\') || list.includes(edge)) return;
    if (kind === 'prefix') {
      list[this.nextPrefix] = flat(edge);
      this.nextPrefix = (this.nextPrefix + 1) % CACHE_SIZE;
    } else {
      list[this.nextSuffix] = flat(edge);
      this.nextSuffix = (this.nextSuffix + 1) % CACHE_SIZE;
    }
  }
}
