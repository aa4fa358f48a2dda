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
  'dr', 'mr', 'mrs', 'ms', 'miss', 'mx', 'prof', 'professor', 'sir', 'dame', 'rev', 'fr', 'nurse', 'doctor', 'capt', 'sgt', 'judge', 'officer', 'madam',
]);
/** Words before a name that say a person follows (lower case, compared case-insensitively). */
const ROLE_CUES = new Set([
  'patient', 'pt', 'mom', 'mother', 'dad', 'father', 'aunt', 'uncle', 'grandma', 'grandpa', 'grandmother', 'grandfather', 'sister', 'brother', 'son',
  'daughter', 'wife', 'husband', 'spouse', 'partner', 'guardian', 'caregiver', 'stepmother', 'stepfather', 'stepmom', 'stepdad', 'baby', 'infant', 'child',
  'attending', 'resident', 'fellow', 'physician', 'provider', 'pediatrician', 'surgeon', 'dentist', 'therapist', 'pharmacist', 'np', 'rn', 'md', 'pcp',
  'by', 'named', 'dear', 'hi', 'hey', 'hello', 'thanks', 'cc', 'attn', 'signed', 'regards', 'sincerely', 'cheers', 'friend', 'colleague', 'manager',
  'neighbor', 'neighbour', 'cousin', 'nephew', 'niece', 'boyfriend', 'girlfriend', 'fiance', 'fiancee', 'roommate', 'coach', 'teacher', 'counselor',
]);
/** Field labels whose value is a person: `Name: …`, `Patient: …`, `From: …`. */
const FIELD_CUE = /(?:name|patient|doctor|physician|provider|contact|from|to|attending|nurse|caregiver|client|customer|user|member|insured|policyholder|holder|claimant|student|employee|guardian|parent|signed|author|referring|recipient|sender|witness|plaintiff|defendant|applicant|beneficiary|subscriber|guarantor|emergency contact|next of kin|bill to|ship to|cc|attn)[ \t]*(?:#\d+[ \t]*)?[:：][ \t]*$/i;
/** A sign-off line before a signature: `Regards,\n`, `Best wishes,\n`. */
const SIGN_OFF = /(?:regards|sincerely|thanks|thank you|best|best wishes|cheers|cordially|respectfully|yours(?: truly)?|warmly|love|take care)[ \t]*,?[ \t]*\r?\n[ \t]*$/i;
const PARTICLES = new Set(['van', 'von', 'de', 'da', 'del', 'della', 'di', 'du', 'la', 'le', 'bin', 'ibn', 'al', 'el', 'der', 'den', 'ter', 'dos', 'das', 'y', 'e']);
/** After a name: generational suffixes and credentials, which belong to the name span. */
const NAME_SUFFIX = /^,?[ \t]*(?:Jr|Sr|II|III|IV|MD|M\.D|DO|DDS|DMD|DVM|PhD|Ph\.D|RN|NP|PA-C|PA|MSN|FNP|BSN|LPN|PharmD|Esq)\.?(?![\p{L}\p{N}])/u;

const STATE_NAMES = [
  'Alabama', 'Alaska', 'Arizona', 'Arkansas', 'California', 'Colorado', 'Connecticut', 'Delaware', 'Florida', 'Georgia', 'Hawaii', 'Idaho', 'Illinois',
  'Indiana', 'Iowa', 'Kansas', 'Kentucky', 'Louisiana', 'Maine', 'Maryland', 'Massachusetts', 'Michigan', 'Minnesota', 'Mississippi', 'Missouri',
  'Montana', 'Nebraska', 'Nevada', 'New Hampshire', 'New Jersey', 'New Mexico', 'New York', 'North Carolina', 'North Dakota', 'Ohio', 'Oklahoma',
  'Oregon', 'Pennsylvania', 'Rhode Island', 'South Carolina', 'South Dakota', 'Tennessee', 'Texas', 'Utah', 'Vermont', 'Virginia', 'Washington',
  'West Virginia', 'Wisconsin', 'Wyoming', 'Puerto Rico', 'District of Columbia',
];
const STATE_CODES =
  'AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|PR';
const STATE_NAME_RE = STATE_NAMES.map((s) => s.replace(/ /g, '[ \\t]+')).join('|');

const CAP_WORD = `\\p{Lu}[\\p{L}\\p{M}]*(?:['’.-]\\p{L}[\\p{L}\\p{M}]*)*`;
/** Capitalised words and initials: the only places a name can start. */
const TOKEN = /(?<![\p{L}\p{M}\p{N}_'’])\p{Lu}[\p{L}\p{M}]*(?:['’-]\p{L}[\p{L}\p{M}]*)*\.?/gu;
/** A US state after a city: `Springfield, IL`, `Austin, Texas`. */
const CITY_STATE = new RegExp(`(?<![\\p{L}\\p{M}])((?:${CAP_WORD}[ \\t]+){0,2}${CAP_WORD}),[ \\t]*(?:(?:${STATE_CODES})(?![\\p{L}\\p{N}])|(?:${STATE_NAME_RE})(?![\\p{L}]))`, 'gu');
const STATE_ALONE = new RegExp(`(?<![\\p{L}\\p{M}])(?:${STATE_NAME_RE})(?![\\p{L}\\p{M}])`, 'gu');
const FACILITY_WORDS = `(?:Hospital|Clinic|Medical[ \\t]+Cent(?:er|re)|Health[ \\t]+Cent(?:er|re)|Health[ \\t]+System|Medical[ \\t]+Group|Healthcare|Infirmary|Hospice|Nursing[ \\t]+Home|Care[ \\t]+Cent(?:er|re)|Rehabilitation[ \\t]+Cent(?:er|re)|Surgery[ \\t]+Cent(?:er|re)|Urgent[ \\t]+Care|Pharmacy|School|Academy)`;
const FACILITY = new RegExp(`(?<![\\p{L}\\p{M}])(?:(?:St\\.?|Saint|Mount|Mt\\.?)[ \\t]+)?(?:${CAP_WORD}[ \\t]+){1,4}${FACILITY_WORDS}(?![\\p{L}])`, 'gu');
const FACILITY_HINT = /Hospital|Clinic|Cent(?:er|re)|Health|Infirmary|Hospice|Nursing|Care|Pharmacy|School|Academy/;
/** Words that start a sentence or a phrase, cut from the front of a facility. */
const LEADING = new Set(['the', 'a', 'an', 'at', 'to', 'from', 'in', 'our', 'your', 'his', 'her', 'their', 'this', 'that', 'and', 'or', 'of', 'for', 'with', 'by', 'via']);
/** After these, capitalised words that read as a town name a place (`lives in Daviston`). */
const PLACE_CUE = /(?:\b(?:lives|living|lived|resides|residing|located|moved|relocated|born|raised|vacation|trip|travel(?:led|ed)?|visit(?:ing|ed)?|flew|fly|flying|drove|driving|en route|heading|headed|arrived|returning|back)[ \t]+(?:in|at|to|from|into)|\b(?:from|in|to|near)|\b(?:city|town|hometown|location)[ \t]*:)[ \t]+$/i;
const TOWN_SUFFIX = /(?:ville|ton|town|burg|burgh|borough|boro|bury|port|stad|side|field|ford|haven|land|mouth|view|wood|chester|shire|furt|fort|berg|mont|dale|ham|polis|shaw|mouth|creek|springs|falls|heights|hills|beach|city|lake)$/;
const PLACE_PREFIX = new Set(['north', 'south', 'east', 'west', 'port', 'lake', 'new', 'fort', 'mount', 'san', 'santa', 'los', 'las', 'saint', 'st', 'el', 'la']);
/** Lower-case names in chat text come after a greeting: `hi sarah`, `thanks mike`. */
const CHAT_GREETING = /(?<![\p{L}])(?:hi|hey|hello|dear|thanks|thank you|thx|bye|morning|night|cheers|congrats|sorry|love you|miss you)[ \t]*,?[ \t]+(\p{Ll}[\p{Ll}'’-]+)(?:[ \t]+(\p{Ll}[\p{Ll}'’-]+))?/dgiu;
const CHAT_HINT = /hi|hey|hello|dear|than|thx|bye|morning|night|cheers|congrats|sorry|love|miss/i;

interface Token {
  start: number;
  end: number;
  key: string;
  cls: number;
  initial: boolean;
  allCaps: boolean;
  title: boolean;
  stop: boolean;
}

function tokenize(text: string, from: number, to: number, g: Gazetteer): Token[] {
  const tokens: Token[] = [];
  TOKEN.lastIndex = from;
  for (let m = TOKEN.exec(text); m !== null && m.index < to; m = TOKEN.exec(text)) {
    let word = m[0];
    let end = m.index + word.length;
    const dotted = word.endsWith('.');
    if (dotted) word = word.slice(0, -1);
    // A possessive (`Hughes's`) is the name without its `'s`.
    if (/['’]s$/.test(word) && word.length > 3) {
      word = word.slice(0, -2);
      end = m.index + word.length;
    } else if (dotted && word.length > 1) {
      end -= 1;
    }
    const key = word.toLowerCase().replace(/’/g, "'");
    const initial = word.length === 1;
    const allCaps = word.length > 1 && word === word.toUpperCase();
    const title = TITLES.has(key);
    tokens.push({ start: m.index, end, key, cls: initial ? UNKNOWN : g.classOf(key), initial, allCaps, title, stop: !initial && g.isStop(key) });
  }
  return tokens;
}

/** Whether two tokens belong to one run of a name: a space, an initial's dot, or a particle between. */
function joined(text: string, a: Token, b: Token): boolean {
  const gap = text.slice(a.end, b.start);
  if (/^[ \t]{1,2}$/.test(gap)) return true;
  if ((a.initial || a.title) && /^\.[ \t]{0,2}$/.test(gap)) return true;
  const p = /^[ \t]+(\p{Ll}{1,5})[ \t]+$/u.exec(gap);
  return p !== null && PARTICLES.has(p[1] as string);
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

function cueBefore(text: string, start: number): boolean {
  const before = text.slice(Math.max(0, start - 40), start);
  if (FIELD_CUE.test(before) || SIGN_OFF.test(before)) return true;
  const w = /(\p{L}+)\.?[ \t]*,?[ \t]+$/u.exec(before);
  if (w === null) return false;
  const word = (w[1] as string).toLowerCase();
  if (ROLE_CUES.has(word) || TITLES.has(word)) return true;
  return /(?:seen|referred|signed|reviewed|examined|evaluated|accompanied|brought in|written|prepared|approved|managed|treated)[ \t]+by[ \t]+$/i.test(before);
}

function pushName(text: string, start: number, end: number, out: Span[]): number {
  const suffix = NAME_SUFFIX.exec(text.slice(end, end + 12));
  const e = suffix ? end + suffix[0].length : end;
  out.push({ start, end: e, label: 'NAME' });
  return e;
}

function scanPeople(text: string, tokens: Token[], out: Span[]): void {
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
    while (j < tokens.length && joined(text, tokens[j - 1] as Token, tokens[j] as Token)) j++;
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
      const cued = (prev !== undefined && (prev.title || ROLE_CUES.has(prev.key))) || cueBefore(text, (seg[0] as Token).start);
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
    if (next !== undefined && /^,[ \t]?$/.test(text.slice(last.end, next.start)) && run.length === 1 && nameish(last) && nameish(next)) {
      const pair = [last.cls, next.cls];
      if (pair.every((c) => c === NAME_STRONG || c === NAME_WEAK) && (pair.includes(NAME_STRONG) || (last.allCaps && next.allCaps))) {
        let e = j + 1;
        while (e < tokens.length && joined(text, tokens[e - 1] as Token, tokens[e] as Token) && nameish(tokens[e] as Token)) e++;
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

function scanChatNames(text: string, from: number, to: number, g: Gazetteer, out: Span[]): void {
  if (!CHAT_HINT.test(text)) return;
  CHAT_GREETING.lastIndex = from;
  for (let m = CHAT_GREETING.exec(text); m !== null && m.index < to; m = CHAT_GREETING.exec(text)) {
    const [firstAt, secondAt] = [m.indices?.[1], m.indices?.[2]];
    if (firstAt === undefined || g.classOf((m[1] as string).toLowerCase()) !== NAME_STRONG) continue;
    const start = firstAt[0];
    let end = firstAt[1];
    if (secondAt !== undefined && g.classOf((m[2] as string).toLowerCase()) === NAME_STRONG) end = secondAt[1];
    out.push({ start, end, label: 'NAME' });
  }
}

function scanPlaces(text: string, from: number, to: number, tokens: Token[], g: Gazetteer, out: Span[]): void {
  if (FACILITY_HINT.test(text)) {
    FACILITY.lastIndex = from;
    for (let m = FACILITY.exec(text); m !== null && m.index < to; m = FACILITY.exec(text)) {
      let start = m.index;
      // Cut sentence words from the front: `The Regional Medical Center` masks `Regional Medical Center`.
      for (;;) {
        const w = /^(\p{L}+)[ \t]+/u.exec(text.slice(start, m.index + m[0].length));
        if (w === null || !LEADING.has((w[1] as string).toLowerCase())) break;
        start += w[0].length;
      }
      out.push({ start, end: m.index + m[0].length, label: 'LOCATION' });
    }
  }
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
  STATE_ALONE.lastIndex = from;
  for (let m = STATE_ALONE.exec(text); m !== null && m.index < to; m = STATE_ALONE.exec(text)) {
    out.push({ start: m.index, end: m.index + m[0].length, label: 'LOCATION' });
  }
  // A town after a place cue: `lives in Daviston`, `from Port Thomasborough`.
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i] as Token;
    if (t.initial || t.allCaps) continue;
    if (!PLACE_CUE.test(text.slice(Math.max(0, t.start - 40), t.start))) continue;
    let j = i + 1;
    while (j < tokens.length && j - i < 3 && joined(text, tokens[j - 1] as Token, tokens[j] as Token) && !(tokens[j] as Token).allCaps) j++;
    const words = tokens.slice(i, j);
    const lastWord = words[words.length - 1] as Token;
    const prefixed = words.length > 1 && PLACE_PREFIX.has(t.key);
    const townLike = (w: Token): boolean => w.cls !== COMMON && !w.stop && TOWN_SUFFIX.test(w.key) && w.key.length > 5;
    if (prefixed ? lastWord.cls !== COMMON : words.length === 1 && townLike(t)) {
      out.push({ start: t.start, end: lastWord.end, label: 'LOCATION' });
    }
  }
}

/** Appends NAME and LOCATION spans that start in [from, to). Throws only on a bug; callers fail closed. */
export function scanEntities(text: string, from = 0, to = text.length, out: Span[] = []): Span[] {
  const g = gazetteer();
  const tokens = tokenize(text, from, to, g);
  if (tokens.length > 0) {
    scanPeople(text, tokens, out);
    scanPlaces(text, from, to, tokens, g, out);
  }
  scanChatNames(text, from, to, g, out);
  return out;
}
