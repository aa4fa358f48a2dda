import { COMMON, NAME_STRONG, NAME_WEAK, UNKNOWN, gazetteer, type Gazetteer } from './gazetteer';
import type { Span } from './types';

/**
 * The entity layer: people and places, which have no shape a regular expression can define.
 * A person is found by a word list (given names and surnames), told apart from ordinary words by
 * how English is usually written (see gazetteer.ts), and by context: a title (`Dr.`, `Mrs`), a
 * role (`patient`, `mom`, `seen by`), a salutation (`Dear`, `Hi`), a sign-off (`Regards,` and a
 * new line) or a field label (`Name:`). A name found once in a text is masked wherever else the
 * text repeats it (`Dr. Ama Okafor … Okafor`). Places are facilities (`… Hospital`, `… Clinic`),
 * US states, `City, ST`, and capitalised words after a place cue (`lives in`, `from`) that read
 * as a town.
 *
 * Errs towards masking: a masked `Grant` in a log costs an operator a word, a leaked surname is a
 * disclosure. The 195 PHI-free hand-off records and ordinary words in the unit tests keep it in check.
 */

const TITLES = new Set([
  'dr',
  'mr',
  'mrs',
  'ms',
  'miss',
  'mx',
  'prof',
  'professor',
  'sir',
  'dame',
  'rev',
  'fr',
  'nurse',
  'doctor',
  'capt',
  'sgt',
  'judge',
  'officer',
  'madam',
]);
/** Words before a name that say a person follows (lower case, compared case-insensitively). */
const ROLE_CUES = new Set([
  'patient',
  'pt',
  'mom',
  'mother',
  'dad',
  'father',
  'aunt',
  'uncle',
  'grandma',
  'grandpa',
  'grandmother',
  'grandfather',
  'sister',
  'brother',
  'son',
  'daughter',
  'wife',
  'husband',
  'spouse',
  'partner',
  'guardian',
  'caregiver',
  'stepmother',
  'stepfather',
  'stepmom',
  'stepdad',
  'baby',
  'infant',
  'child',
  'attending',
  'resident',
  'fellow',
  'physician',
  'provider',
  'pediatrician',
  'surgeon',
  'dentist',
  'therapist',
  'pharmacist',
  'np',
  'rn',
  'md',
  'pcp',
  'by',
  'named',
  'dear',
  'hi',
  'hey',
  'hello',
  'thanks',
  'cc',
  'attn',
  'signed',
  'regards',
  'sincerely',
  'cheers',
  'friend',
  'colleague',
  'manager',
  'neighbor',
  'neighbour',
  'cousin',
  'nephew',
  'niece',
  'boyfriend',
  'girlfriend',
  'fiance',
  'fiancee',
  'roommate',
  'coach',
  'teacher',
  'counselor',
]);
/** Field labels whose value is a person: `Name: …`, `Patient: …`, `From: …`. */
const FIELD_CUE =
  /(?:name|patient|doctor|physician|provider|contact|from|to|attending|nurse|caregiver|client|customer|user|member|insured|policyholder|holder|claimant|student|employee|guardian|parent|signed|author|referring|recipient|sender|witness|plaintiff|defendant|applicant|beneficiary|subscriber|guarantor|emergency contact|next of kin|bill to|ship to|cc|attn)[ \t]*(?:#\d+[ \t]*)?[:：][ \t]*$/i;
/** A sign-off line before a signature: `Regards,\n`, `Best wishes,\n`. */
const SIGN_OFF =
  /(?:regards|sincerely|thanks|thank you|best|best wishes|cheers|cordially|respectfully|yours(?: truly)?|warmly|love|take care)[ \t]*,?[ \t]*\r?\n[ \t]*$/i;
const PARTICLES = new Set([
  'van',
  'von',
  'de',
  'da',
  'del',
  'della',
  'di',
  'du',
  'la',
  'le',
  'bin',
  'ibn',
  'al',
  'el',
  'der',
  'den',
  'ter',
  'dos',
  'das',
  'y',
  'e',
]);
/** After a name: generational suffixes and credentials, which belong to the name span. */
const NAME_SUFFIX = /^,?[ \t]*(?:Jr|Sr|II|III|IV|MD|M\.D|DO|DDS|DMD|DVM|PhD|Ph\.D|RN|NP|PA-C|PA|MSN|FNP|BSN|LPN|PharmD|Esq)\.?(?![\p{L}\p{N}])/u;

const STATE_NAMES = [
  'Alabama',
  'Alaska',
  'Arizona',
  'Arkansas',
  'California',
  'Colorado',
  'Connecticut',
  'Delaware',
  'Florida',
  'Georgia',
  'Hawaii',
  'Idaho',
  'Illinois',
  'Indiana',
  'Iowa',
  'Kansas',
  'Kentucky',
  'Louisiana',
  'Maine',
  'Maryland',
  'Massachusetts',
  'Michigan',
  'Minnesota',
  'Mississippi',
  'Missouri',
  'Montana',
  'Nebraska',
  'Nevada',
  'New Hampshire',
  'New Jersey',
  'New Mexico',
  'New York',
  'North Carolina',
  'North Dakota',
  'Ohio',
  'Oklahoma',
  'Oregon',
  'Pennsylvania',
  'Rhode Island',
  'South Carolina',
  'South Dakota',
  'Tennessee',
  'Texas',
  'Utah',
  'Vermont',
  'Virginia',
  'Washington',
  'West Virginia',
  'Wisconsin',
  'Wyoming',
  'Puerto Rico',
  'District of Columbia',
];
const STATE_CODES =
  'AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|PR';
const STATE_NAME_RE = STATE_NAMES.map((s) => s.replace(/ /g, '[ \\t]+')).join('|');

const CAP_WORD = `\\p{Lu}[\\p{L}\\p{M}]*(?:['’.-]\\p{L}[\\p{L}\\p{M}]*)*`;
/** Capitalised words and initials: the only places a name can start. */
const TOKEN = /(?<![\p{L}\p{M}\p{N}_'’])\p{Lu}[\p{L}\p{M}]*(?:['’-]\p{L}[\p{L}\p{M}]*)*\.?/gu;
/** A US state after a city: `Springfield, IL`, `Austin, Texas`. */
const CITY_STATE = new RegExp(
  `(?<![\\p{L}\\p{M}])((?:${CAP_WORD}[ \\t]+){0,2}${CAP_WORD}),[ \\t]*(?:(?:${STATE_CODES})(?![\\p{L}\\p{N}])|(?:${STATE_NAME_RE})(?![\\p{L}]))`,
  'gu',
);
const STATE_ALONE = new RegExp(`(?<![\\p{L}\\p{M}])(?:${STATE_NAME_RE})(?![\\p{L}\\p{M}])`, 'gu');
const FACILITY_WORDS = `(?:Hospital|Clinic|Medical[ \\t]+Cent(?:er|re)|Health[ \\t]+Cent(?:er|re)|Health[ \\t]+System|Medical[ \\t]+Group|Healthcare|Infirmary|Hospice|Nursing[ \\t]+Home|Care[ \\t]+Cent(?:er|re)|Rehabilitation[ \\t]+Cent(?:er|re)|Surgery[ \\t]+Cent(?:er|re)|Urgent[ \\t]+Care|Pharmacy|School|Academy|Elementary|Montessori|Preschool|Daycare|Kindergarten)`;
const FACILITY = new RegExp(`(?<![\\p{L}\\p{M}])(?:(?:St\\.?|Saint|Mount|Mt\\.?)[ \\t]+)?(?:${CAP_WORD}[ \\t]+){1,4}${FACILITY_WORDS}(?![\\p{L}])`, 'gu');
/** Named places by their last word (`Riverside Park`, `Blue Ridge Mountains`, `City Hall`): a name before it is required. */
const LANDMARK_WORDS = [
  'Park',
  'Tower',
  'Towers',
  'Mountain',
  'Mountains',
  'Canyon',
  'Beach',
  'Lake',
  'Bay',
  'Island',
  'Falls',
  'Museum',
  'Stadium',
  'Arena',
  'Airport',
  'Bridge',
  'Plaza',
  'Mall',
  'Zoo',
  'Gardens',
  'Forest',
  'Valley',
  'Resort',
  'Amphitheater',
  'Amphitheatre',
  'Theater',
  'Theatre',
  'Hotel',
  'Library',
  'Cathedral',
  'Church',
  'Hall',
  'Square',
  'Harbor',
  'Harbour',
  'Pier',
  'Marina',
  'Campground',
  'Reservoir',
];
const LANDMARK = new RegExp(
  `(?<![\\p{L}\\p{M}])(?:(?:St\\.?|Saint|Mount|Mt\\.?)[ \\t]+)?(?:${CAP_WORD}[ \\t]+){1,3}(?:${LANDMARK_WORDS.join('|')})(?![\\p{L}])`,
  'gu',
);
const LANDMARK_HEADS = new Set(LANDMARK_WORDS.map((w) => w.toLowerCase()));
/** Words that start a sentence or a phrase, cut from the front of a facility. */
const LEADING = new Set([
  'the',
  'a',
  'an',
  'at',
  'to',
  'from',
  'in',
  'our',
  'your',
  'his',
  'her',
  'their',
  'this',
  'that',
  'and',
  'or',
  'of',
  'for',
  'with',
  'by',
  'via',
]);
/** After these, capitalised words that read as a town name a place (`lives in Daviston`). */
const PLACE_CUE =
  /(?:\b(?:lives|living|lived|resides|residing|located|moved|relocated|born|raised|vacation|trip|travel(?:led|ed)?|visit(?:ing|ed)?|flew|fly|flying|drove|driving|en route|heading|headed|arrived|returning|back)[ \t]+(?:in|at|to|from|into)|\b(?:from|in|to|near|at)|\b(?:city|town|hometown|location)[ \t]*:)[ \t]+$/i;
const TOWN_SUFFIX =
  /(?:ville|ton|town|burg|burgh|borough|boro|bury|port|stad|side|field|ford|haven|land|mouth|view|wood|chester|shire|furt|fort|berg|mont|dale|ham|polis|shaw|mouth|creek|springs|falls|heights|hills|beach|city|lake)$/;
const PLACE_PREFIX = new Set([
  'north',
  'south',
  'east',
  'west',
  'port',
  'lake',
  'new',
  'fort',
  'mount',
  'san',
  'santa',
  'los',
  'las',
  'saint',
  'st',
  'el',
  'la',
]);
/** Lower-case names in chat text come after a greeting: `hi sarah`, `thanks mike`. */
const CHAT_GREETING =
  /(?<![\p{L}])(?:hi|hey|hello|dear|thanks|thank you|thx|bye|morning|night|cheers|congrats|sorry|love you|miss you)[ \t]*,?[ \t]+(\p{Ll}[\p{Ll}'’-]+)(?:[ \t]+(\p{Ll}[\p{Ll}'’-]+))?/dgiu;
const CHAT_HINT = /hi|hey|hello|dear|than|thx|bye|morning|night|cheers|congrats|sorry|love|miss/i;
const CHAT_GREETING_AT = new RegExp(CHAT_GREETING.source, 'dyiu');

// ioredis 6 defines `class VerbatimString extends String`; once any String subclass exists in the
// process, V8 stops inlining `s.charCodeAt(i)` call sites (~5x slower in per-character loops).
// Calling the method captured here (`charCodeAt.call(s, i)`) stays fast under that deopt.
const charCodeAt = String.prototype.charCodeAt;

interface Token {
  start: number;
  end: number;
  key: string;
  /** The key up to its first `'`, `-` or `.` (`hospital` of `Hospital-based`): what the place gates compare. */
  head: string;
  cls: number;
  initial: boolean;
  allCaps: boolean;
  title: boolean;
  stop: boolean;
}

/** What a token's text says on its own, whatever text it stands in (memoised per distinct word). */
interface WordFacts {
  /** Characters cut from the end of the match: a possessive `'s`, a name's full stop. */
  cut: number;
  key: string;
  head: string;
  cls: number;
  initial: boolean;
  allCaps: boolean;
  title: boolean;
  stop: boolean;
}

/**
 * Log lines repeat the same few capitalised words (`Active`, `PPO`, a bot's step names), so each
 * distinct word is classified once. Bounded: cleared when full (a clear only costs a recount).
 */
const FACTS_LIMIT = 20_000;
let factsOf: Map<string, WordFacts> = new Map();
let factsGazetteer: Gazetteer | undefined;
/** A copy that does not keep the text it was sliced from alive (V8 slices strings of 13+ characters). */
const own = (s: string): string => (s.length < 13 ? s : Buffer.from(s, 'utf8').toString('utf8'));

function wordFacts(raw: string, g: Gazetteer): WordFacts {
  if (factsGazetteer !== g) {
    factsOf = new Map();
    factsGazetteer = g;
  }
  const known = factsOf.get(raw);
  if (known !== undefined) return known;
  let word = raw;
  let cut = 0;
  const dotted = word.endsWith('.');
  if (dotted) word = word.slice(0, -1);
  // A possessive (`Hughes's`) is the name without its `'s`.
  if (/['’]s$/.test(word) && word.length > 3) {
    word = word.slice(0, -2);
    cut = raw.length - word.length;
  } else if (dotted && word.length > 1) {
    cut = 1;
  }
  const key = word.toLowerCase().replace(/’/g, "'");
  const initial = word.length === 1;
  const facts: WordFacts = {
    cut,
    key,
    head: /^[^'’.-]*/.exec(key)?.[0] ?? key,
    cls: initial ? UNKNOWN : g.classOf(key),
    initial,
    allCaps: word.length > 1 && word === word.toUpperCase(),
    title: TITLES.has(key),
    stop: !initial && g.isStop(key),
  };
  if (factsOf.size >= FACTS_LIMIT) factsOf.clear();
  factsOf.set(own(raw), facts);
  return facts;
}

function tokenAt(text: string, start: number, end: number, g: Gazetteer): Token {
  const f = wordFacts(text.slice(start, end), g);
  return { start, end: end - f.cut, key: f.key, head: f.head, cls: f.cls, initial: f.initial, allCaps: f.allCaps, title: f.title, stop: f.stop };
}

/** What one pass over the text found: the tokens, and where a chat greeting may start. */
interface Lexed {
  tokens: Token[];
  /** Positions of words that may open a chat greeting; undefined: not known (search the text). */
  greetings: number[] | undefined;
  /** A state name's first word after a digit, `_` or `'`: no token starts there, but STATE_ALONE may match. */
  oddCapitals: boolean;
}

/** The regular-expression tokenizer: the definition (TOKEN), used whenever the text is not ASCII. */
function tokenizeByPattern(text: string, from: number, to: number, g: Gazetteer): Lexed {
  const tokens: Token[] = [];
  TOKEN.lastIndex = from;
  for (let m = TOKEN.exec(text); m !== null && m.index < to; m = TOKEN.exec(text)) tokens.push(tokenAt(text, m.index, m.index + m[0].length, g));
  return { tokens, greetings: undefined, oddCapitals: true };
}

const isLetter = (c: number): boolean => (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
const isBlank = (c: number): boolean => c === 32 || c === 9;
/** Hash of a lower-cased ASCII word, as `lex` computes it while it reads the letters. */
const wordHash = (w: string): number => {
  let h = 0;
  for (let i = 0; i < w.length; i++) h = (Math.imul(h, 31) + (charCodeAt.call(w, i) | 32)) & 0xfffffff;
  return h;
};
/** The first words of CHAT_GREETING (`thank` of `thank you`), by hash: a collision costs one anchored try. */
const GREETING_HASHES = new Set(
  ['hi', 'hey', 'hello', 'dear', 'thanks', 'thank', 'thx', 'bye', 'morning', 'night', 'cheers', 'congrats', 'sorry', 'love', 'miss'].map(wordHash),
);

/**
 * One pass over the characters of [from, to) that finds exactly the tokens TOKEN finds, and the
 * word starts where CHAT_GREETING may match, without running a Unicode regular expression over
 * every position: the entity layer's cost on a log line that names nobody is this loop. Any
 * character outside ASCII hands the whole text to `tokenizeByPattern` (Unicode letters, `’`).
 */
function lex(text: string, from: number, to: number, g: Gazetteer): Lexed {
  const tokens: Token[] = [];
  const greetings: number[] = [];
  let oddCapitals = false;
  const n = text.length;
  let i = from;
  while (i < to) {
    const c = charCodeAt.call(text, i);
    if (c >= 128) return tokenizeByPattern(text, from, to, g);
    if (!isLetter(c)) {
      i++;
      continue;
    }
    const start = i;
    const prev = start > 0 ? charCodeAt.call(text, start - 1) : 32;
    if (prev >= 128) return tokenizeByPattern(text, from, to, g);
    let h = 0;
    let d = c;
    while (isLetter(d)) {
      h = (Math.imul(h, 31) + (d | 32)) & 0xfffffff;
      d = ++i < n ? charCodeAt.call(text, i) : 32;
    }
    if (d >= 128) return tokenizeByPattern(text, from, to, g);
    // Inside a word (only where `from` cuts one): neither a token nor a greeting starts here.
    if (isLetter(prev)) continue;
    if (GREETING_HASHES.has(h)) greetings.push(start);
    if (c > 90) continue;
    // TOKEN's look-behind: no token after a digit, `_` or `'` (`5Texas`, `'Texas'`).
    if ((prev >= 48 && prev <= 57) || prev === 95 || prev === 39) {
      if (STATE_FIRST_HASHES.has(h)) oddCapitals = true;
      continue;
    }
    // `O'Brien`, `Jean-Pierre`: a `'` or `-` and more letters; then an optional full stop.
    while ((d === 39 || d === 45) && i + 1 < n && isLetter(charCodeAt.call(text, i + 1))) {
      const part = ++i;
      h = 0;
      d = charCodeAt.call(text, i);
      while (isLetter(d)) {
        h = (Math.imul(h, 31) + (d | 32)) & 0xfffffff;
        d = ++i < n ? charCodeAt.call(text, i) : 32;
      }
      if (d >= 128) return tokenizeByPattern(text, from, to, g);
      // After a `'` or `-` a greeting may start (`x-hi sarah`): the regex decides.
      if (GREETING_HASHES.has(h)) greetings.push(part);
    }
    if (d === 46) i++;
    tokens.push(tokenAt(text, start, i, g));
  }
  return { tokens, greetings, oddCapitals };
}

/** Whether two tokens belong to one run of a name: a space, an initial's dot, or a particle between. */
function joined(text: string, a: Token, b: Token): boolean {
  const len = b.start - a.end;
  if (len <= 0) return false;
  const c0 = charCodeAt.call(text, a.end);
  if (c0 === 46) {
    // `J. Smith`, `Dr. Okafor`: a dot and at most two blanks.
    if (!(a.initial || a.title) || len > 3) return false;
    for (let p = a.end + 1; p < b.start; p++) if (!isBlank(charCodeAt.call(text, p))) return false;
    return true;
  }
  if (!isBlank(c0)) return false;
  if (len === 1 || (len === 2 && isBlank(charCodeAt.call(text, a.end + 1)))) return true;
  // `Ludwig van Beethoven`: blanks, a particle of at most five lower-case letters, blanks.
  let p = a.end;
  while (p < b.start && isBlank(charCodeAt.call(text, p))) p++;
  const w = p;
  while (p < b.start && charCodeAt.call(text, p) >= 97 && charCodeAt.call(text, p) <= 122) p++;
  if (p < b.start && charCodeAt.call(text, p) >= 128) {
    const m = /^[ \t]+(\p{Ll}{1,5})[ \t]+$/u.exec(text.slice(a.end, b.start));
    return m !== null && PARTICLES.has(m[1] as string);
  }
  const wordEnd = p;
  if (wordEnd - w < 1 || wordEnd - w > 5 || wordEnd === b.start) return false;
  while (p < b.start && isBlank(charCodeAt.call(text, p))) p++;
  return p === b.start && PARTICLES.has(text.slice(w, wordEnd));
}

/** A word that may be part of a name. */
function nameish(t: Token): boolean {
  if (t.title || t.stop) return false;
  if (t.initial) return true;
  if (t.cls === COMMON) return false;
  // Short upper-case words are acronyms (`MRN`, `PPO`, `ICU`) unless the name list has them.
  if (t.allCaps && t.cls === UNKNOWN && t.key.length <= 4) return false;
  return true;
}

const CUE_WORD = /(\p{L}+)\.?[ \t]*,?[ \t]+$/u;

/**
 * A context cue right before `start`: a field label (`Name:`), a sign-off line, or a role or
 * title word (`patient`, `Dr.`). The characters just before decide which regular expression
 * can match at all, so most names cost no regular expression here.
 */
function cueBefore(text: string, start: number): boolean {
  let p = start;
  while (p > 0 && isBlank(charCodeAt.call(text, p - 1))) p--;
  const c = p > 0 ? charCodeAt.call(text, p - 1) : -1;
  if (c === 58 || c === 0xff1a) {
    if (FIELD_CUE.test(text.slice(Math.max(0, start - 40), start))) return true;
  } else if (c === 10) {
    if (SIGN_OFF.test(text.slice(Math.max(0, start - 40), start))) return true;
  }
  // `(\p{L}+)\.?[ \t]*,?[ \t]+$`: a word, an optional dot and comma, and at least one blank.
  if (p === start) return false;
  let q = p;
  if (q > 0 && charCodeAt.call(text, q - 1) === 44) {
    q--;
    while (q > 0 && isBlank(charCodeAt.call(text, q - 1))) q--;
  }
  if (q > 0 && charCodeAt.call(text, q - 1) === 46) q--;
  const wordEnd = q;
  while (q > 0 && isLetter(charCodeAt.call(text, q - 1))) q--;
  let word: string;
  if ((q > 0 && charCodeAt.call(text, q - 1) >= 128) || start - q > 40) {
    // A letter outside ASCII, or further back than the regular expression looks: let it decide.
    const w = CUE_WORD.exec(text.slice(Math.max(0, start - 40), start));
    if (w === null) return false;
    word = (w[1] as string).toLowerCase();
  } else {
    if (q === wordEnd) return false;
    word = text.slice(q, wordEnd).toLowerCase();
  }
  return ROLE_CUES.has(word) || TITLES.has(word);
}

function pushName(text: string, start: number, end: number, out: Span[]): number {
  const suffix = NAME_SUFFIX.exec(text.slice(end, end + 12));
  const e = suffix ? end + suffix[0].length : end;
  out.push({ start, end: e, label: 'NAME' });
  // `Dylan Miller, 2694522, is a 9 mo old…`: a number of six to ten digits set off right after a
  // person's name is that person's record number.
  const id = NUMBER_AFTER_NAME.exec(text.slice(e, e + 16));
  if (id !== null) out.push({ start: e + id[0].length - (id[1] as string).length, end: e + id[0].length, label: 'MRN' });
  return e;
}
const NUMBER_AFTER_NAME = /^,[ \t]*(\d{6,10})(?=[ \t]*[,;)]|[ \t]*$)/;

/** The context checks as regular expressions: the definitions the hand-written checks above follow. */
const byPattern = {
  joined(text: string, a: Token, b: Token): boolean {
    const gap = text.slice(a.end, b.start);
    if (/^[ \t]{1,2}$/.test(gap)) return true;
    if ((a.initial || a.title) && /^\.[ \t]{0,2}$/.test(gap)) return true;
    const p = /^[ \t]+(\p{Ll}{1,5})[ \t]+$/u.exec(gap);
    return p !== null && PARTICLES.has(p[1] as string);
  },
  cueBefore(text: string, start: number): boolean {
    const before = text.slice(Math.max(0, start - 40), start);
    if (FIELD_CUE.test(before) || SIGN_OFF.test(before)) return true;
    const w = CUE_WORD.exec(before);
    if (w === null) return false;
    const word = (w[1] as string).toLowerCase();
    return ROLE_CUES.has(word) || TITLES.has(word);
  },
  commaBetween: (text: string, a: Token, b: Token): boolean => /^,[ \t]?$/.test(text.slice(a.end, b.start)),
  placeCueBefore: (text: string, start: number): boolean => PLACE_CUE.test(text.slice(Math.max(0, start - 40), start)),
};
type Checks = typeof byPattern;

function scanPeople(text: string, tokens: Token[], out: Span[], c: Checks): void {
  const found = new Set<string>();
  const covered: [number, number][] = [];
  const accept = (seg: Token[]): void => {
    const first = seg[0] as Token;
    const last = seg[seg.length - 1] as Token;
    const end = pushName(text, first.start, last.end, out);
    covered.push([first.start, end]);
    for (const t of seg) if (!t.initial && t.key.length >= 3 && t.cls !== COMMON) found.add(t.key);
  };

  let i = 0;
  while (i < tokens.length) {
    // One run: tokens joined by spaces, initials' dots and particles.
    let j = i + 1;
    while (j < tokens.length && c.joined(text, tokens[j - 1] as Token, tokens[j] as Token)) j++;
    const run = tokens.slice(i, j);
    let k = 0;
    while (k < run.length) {
      if (!nameish(run[k] as Token)) {
        k++;
        continue;
      }
      let e = k;
      while (e < run.length && nameish(run[e] as Token)) e++;
      let seg = run.slice(k, e);
      const prev = k > 0 ? (run[k - 1] as Token) : undefined;
      const cued = (prev !== undefined && (prev.title || ROLE_CUES.has(prev.key))) || c.cueBefore(text, (seg[0] as Token).start);
      const words = seg.filter((t) => !t.initial);
      const strong = words.some((t) => t.cls === NAME_STRONG && !(t.allCaps && words.length === 1));
      // A cue makes a name of an unknown word (`Dr. Okafor`), but of an ordinary word that is also
      // a name (`Patient Card`, `Dear Parent`) only after a title.
      const titled = prev?.title === true;
      const cuedName = cued && (titled || words.some((t) => t.cls !== NAME_WEAK));
      if (words.length > 0 && (strong || cuedName)) {
        // With a cue, at most four words: `Dr. Ama Okafor` yes, a whole capitalised heading no.
        if (!strong) seg = seg.slice(0, 4);
        accept(seg);
      }
      k = e;
    }
    // `SMITH, JOHN` / `Smith, John`: a surname, a comma, a given name.
    const last = run[run.length - 1] as Token;
    const next = tokens[j];
    if (next !== undefined && c.commaBetween(text, last, next) && run.length === 1 && nameish(last) && nameish(next)) {
      const pair = [last.cls, next.cls];
      if (pair.every((c) => c === NAME_STRONG || c === NAME_WEAK) && (pair.includes(NAME_STRONG) || (last.allCaps && next.allCaps))) {
        let e = j + 1;
        while (e < tokens.length && c.joined(text, tokens[e - 1] as Token, tokens[e] as Token) && nameish(tokens[e] as Token)) e++;
        accept([last, ...tokens.slice(j, e)]);
      }
    }
    i = j;
  }

  // A name found once is masked wherever the text repeats it (`Dr. Okafor` later `Okafor`).
  if (found.size === 0) return;
  for (const t of tokens) {
    if (!found.has(t.key) || t.initial) continue;
    if (covered.some(([s, e]) => t.start >= s && t.end <= e)) continue;
    out.push({ start: t.start, end: t.end, label: 'NAME' });
  }
}

/** `SMITH, JOHN`: a comma and at most one blank between two tokens. */
function commaBetween(text: string, a: Token, b: Token): boolean {
  const len = b.start - a.end;
  return (len === 1 || (len === 2 && isBlank(charCodeAt.call(text, a.end + 1)))) && charCodeAt.call(text, a.end) === 44;
}

/** The hand-written checks (the lexer's path). */
const byHand: Checks = { joined, cueBefore, commaBetween, placeCueBefore };

function chatName(m: RegExpExecArray, g: Gazetteer, out: Span[]): void {
  const [firstAt, secondAt] = [m.indices?.[1], m.indices?.[2]];
  if (firstAt === undefined || g.classOf((m[1] as string).toLowerCase()) !== NAME_STRONG) return;
  const start = firstAt[0];
  let end = firstAt[1];
  if (secondAt !== undefined && g.classOf((m[2] as string).toLowerCase()) === NAME_STRONG) end = secondAt[1];
  out.push({ start, end, label: 'NAME' });
}

function scanChatNames(text: string, from: number, to: number, greetings: number[] | undefined, g: Gazetteer, out: Span[]): void {
  if (greetings === undefined) {
    if (!CHAT_HINT.test(text)) return;
    CHAT_GREETING.lastIndex = from;
    for (let m = CHAT_GREETING.exec(text); m !== null && m.index < to; m = CHAT_GREETING.exec(text)) chatName(m, g, out);
    return;
  }
  // Anchored at each word the lexer saw could open a greeting; a match's end is where the global
  // search would go on from, so the same matches are found.
  let after = 0;
  for (const at of greetings) {
    if (at < after) continue;
    CHAT_GREETING_AT.lastIndex = at;
    const m = CHAT_GREETING_AT.exec(text);
    if (m === null) continue;
    chatName(m, g, out);
    after = m.index + m[0].length;
  }
}

/** Last words of FACILITY_WORDS: a facility needs a token with one of these heads. */
const FACILITY_HEADS = new Set([
  'elementary',
  'montessori',
  'preschool',
  'daycare',
  'kindergarten',
  'hospital',
  'clinic',
  'center',
  'centre',
  'system',
  'group',
  'healthcare',
  'infirmary',
  'hospice',
  'home',
  'care',
  'pharmacy',
  'school',
  'academy',
]);
/** First words of the state names, lower case: STATE_ALONE needs one of these. */
const STATE_FIRST = new Set(STATE_NAMES.map((s) => (s.split(' ')[0] as string).toLowerCase()));
const STATE_FIRST_HASHES = new Set([...STATE_FIRST].map(wordHash));
/** A token that may start CITY_STATE's state: a state code or name right after `,` and blanks. */
const STATE_AFTER_COMMA = new Set([...STATE_FIRST, ...STATE_CODES.toLowerCase().split('|')]);

function afterComma(text: string, t: Token): boolean {
  let p = t.start;
  while (p > 0 && isBlank(charCodeAt.call(text, p - 1))) p--;
  return p > 0 && charCodeAt.call(text, p - 1) === 44;
}

/** Words a place cue ends with (PLACE_CUE: `lives in`, `from`, `near`, `city:`), checked before the regex runs. */
const PLACE_CUE_ENDS = new Set(['in', 'at', 'to', 'from', 'into', 'near']);

function placeCueBefore(text: string, start: number): boolean {
  let p = start;
  while (p > 0 && isBlank(charCodeAt.call(text, p - 1))) p--;
  if (p === start || p === 0) return false;
  const c = charCodeAt.call(text, p - 1);
  if (c !== 58) {
    let q = p;
    while (q > 0 && isLetter(charCodeAt.call(text, q - 1))) q--;
    if (p - q < 2 || p - q > 4 || !PLACE_CUE_ENDS.has(text.slice(q, p).toLowerCase())) return false;
  }
  return PLACE_CUE.test(text.slice(Math.max(0, start - 40), start));
}

/** Cuts sentence words from the front: `The Regional Medical Center` masks `Regional Medical Center`. */
function withoutLeadingWords(text: string, start: number, end: number): number {
  for (;;) {
    const w = /^(\p{L}+)[ \t]+/u.exec(text.slice(start, end));
    if (w === null || !LEADING.has((w[1] as string).toLowerCase())) return start;
    start += w[0].length;
  }
}

/**
 * A place named by its field label, the rest of the line: `Location: Conference Room B`,
 * `Venue: Hall 3, Pier 39`. The label says it is a place whatever the words are; it must start
 * with a capital or a digit (`Location: unknown` stays). Labels are written capitalised: the gate
 * looks only at capitalised words, so a line of lower-case log keys costs nothing.
 */
const PLACE_FIELD =
  /(?<![\p{L}\p{M}])(?:Location|LOCATION|Venue|VENUE|Meeting [Pp]lace|MEETING PLACE|Place of [Ss]ervice|PLACE OF SERVICE)[ \t]*:[ \t]*(\p{Lu}|\d)([^\n]{0,59}?)[ \t.]*(?=\r?\n|$)/gu;
const PLACE_FIELD_HEADS = new Set(['location', 'venue', 'meeting', 'place']);

function scanPlaces(text: string, from: number, to: number, lexed: Lexed, g: Gazetteer, out: Span[], c: Checks): void {
  const ungated = c === byPattern;
  const { tokens } = lexed;
  if (ungated || tokens.some((t) => PLACE_FIELD_HEADS.has(t.head))) {
    PLACE_FIELD.lastIndex = from;
    for (let m = PLACE_FIELD.exec(text); m !== null && m.index < to; m = PLACE_FIELD.exec(text)) {
      const value = (m[1] as string) + (m[2] as string);
      const start = m.index + m[0].indexOf(value, m[0].indexOf(':'));
      out.push({ start, end: start + value.length, label: 'LOCATION' });
    }
  }
  if (ungated || tokens.some((t) => FACILITY_HEADS.has(t.head))) {
    FACILITY.lastIndex = from;
    for (let m = FACILITY.exec(text); m !== null && m.index < to; m = FACILITY.exec(text)) {
      out.push({ start: withoutLeadingWords(text, m.index, m.index + m[0].length), end: m.index + m[0].length, label: 'LOCATION' });
    }
  }
  if (ungated || tokens.some((t) => LANDMARK_HEADS.has(t.head))) {
    LANDMARK.lastIndex = from;
    for (let m = LANDMARK.exec(text); m !== null && m.index < to; m = LANDMARK.exec(text)) {
      const start = withoutLeadingWords(text, m.index, m.index + m[0].length);
      // `The Park`, `Our Hotel`: no name left before the landmark word.
      if (/[ \t]/.test(text.slice(start, m.index + m[0].length))) out.push({ start, end: m.index + m[0].length, label: 'LOCATION' });
    }
  }
  if (ungated || tokens.some((t) => STATE_AFTER_COMMA.has(t.head) && afterComma(text, t))) {
    CITY_STATE.lastIndex = from;
    for (let m = CITY_STATE.exec(text); m !== null && m.index < to; m = CITY_STATE.exec(text)) {
      let start = m.index;
      const city = m[1] as string;
      // Only the words of the city: `Patient lives in Austin, TX` masks `Austin, TX`.
      const words = city.split(/[ \t]+/);
      while (words.length > 1 && g.classOf((words[0] as string).toLowerCase()) === COMMON && !PLACE_PREFIX.has((words[0] as string).toLowerCase())) {
        start += (words.shift() as string).length;
        while (/[ \t]/.test(text.charAt(start))) start++;
      }
      out.push({ start, end: m.index + m[0].length, label: 'LOCATION' });
    }
  }
  if (ungated || lexed.oddCapitals || tokens.some((t) => STATE_FIRST.has(t.head))) {
    STATE_ALONE.lastIndex = from;
    for (let m = STATE_ALONE.exec(text); m !== null && m.index < to; m = STATE_ALONE.exec(text)) {
      out.push({ start: m.index, end: m.index + m[0].length, label: 'LOCATION' });
    }
  }
  scanKnownPlaces(text, tokens, g, out);
  // A town after a place cue: `lives in Daviston`, `from Port Thomasborough`.
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i] as Token;
    if (t.initial || t.allCaps) continue;
    if (!c.placeCueBefore(text, t.start)) continue;
    let j = i + 1;
    while (j < tokens.length && j - i < 3 && c.joined(text, tokens[j - 1] as Token, tokens[j] as Token) && !(tokens[j] as Token).allCaps) j++;
    const words = tokens.slice(i, j);
    const lastWord = words[words.length - 1] as Token;
    const prefixed = words.length > 1 && PLACE_PREFIX.has(t.key);
    const townLike = (w: Token): boolean => w.cls !== COMMON && !w.stop && TOWN_SUFFIX.test(w.key) && w.key.length > 5;
    if (prefixed ? lastWord.cls !== COMMON : words.length === 1 && townLike(t)) {
      out.push({ start: t.start, end: lastWord.end, label: 'LOCATION' });
    }
  }
}

/** Up to three capitalised words with one space between them: a place name of the gazetteer. */
const PLACE_WORDS = 3;

/**
 * Countries and cities of the gazetteer, by name and without a cue: `a trip to Italy`, `our
 * Miami office`, `New York`, `Urbana-Champaign` (each part of a hyphened word a place). The
 * longest name starting at a word wins. Words in capitals are left to the name rules.
 */
function scanKnownPlaces(text: string, tokens: readonly Token[], g: Gazetteer, out: Span[]): void {
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i] as Token;
    // Nearly every word is no place's first word: one look-up, and on to the next.
    if (t.allCaps || t.initial || !g.startsPlace(t.head)) continue;
    let key = t.key;
    let found = g.isPlace(key) || (key.includes('-') && key.split('-').every((part) => part.length >= 4 && g.isPlace(part))) ? i : -1;
    for (let j = i + 1; j < tokens.length && j - i < PLACE_WORDS; j++) {
      const next = tokens[j] as Token;
      const gap = next.start - (tokens[j - 1] as Token).end;
      if (next.allCaps || gap !== 1 || charCodeAt.call(text, next.start - 1) !== 32) break;
      key += ' ' + next.key;
      if (g.isPlace(key)) found = j;
    }
    if (found < 0) continue;
    const last = tokens[found] as Token;
    out.push({ start: t.start, end: last.end, label: 'LOCATION' });
    i = found;
  }
}

/** Appends NAME and LOCATION spans that start in [from, to). Throws only on a bug; callers fail closed. */
export function scanEntities(text: string, from = 0, to = text.length, out: Span[] = []): Span[] {
  const g = gazetteer();
  return scanLexed(text, from, to, lex(text, from, to, g), g, out, byHand);
}

/**
 * The reference: the same layer with the regular-expression tokenizer, every place rule and the
 * greeting search over the whole text. The tests assert that it finds what `scanEntities` finds,
 * so the lexer and the gates can only make the layer faster, never weaker.
 */
export function scanEntitiesReference(text: string, from = 0, to = text.length, out: Span[] = []): Span[] {
  const g = gazetteer();
  return scanLexed(text, from, to, tokenizeByPattern(text, from, to, g), g, out, byPattern);
}

function scanLexed(text: string, from: number, to: number, lexed: Lexed, g: Gazetteer, out: Span[], c: Checks): Span[] {
  if (lexed.tokens.length > 0) {
    scanPeople(text, lexed.tokens, out, c);
    scanPlaces(text, from, to, lexed, g, out, c);
  } else if (lexed.oddCapitals) {
    scanPlaces(text, from, to, lexed, g, out, c);
  }
  scanChatNames(text, from, to, lexed.greetings, g, out);
  return out;
}
