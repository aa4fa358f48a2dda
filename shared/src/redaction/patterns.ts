import { isIPv6 } from 'node:net';
import { cardValid, deaValid, npiValid, plausibleDate, ssnValid, vinValid } from './checksums';
import { REDACT_KEYS } from '../logging/redact-keys';
import type { PatternLabel, Span } from './types';

// ioredis 6 defines `class VerbatimString extends String`; once any String subclass exists in the
// process, V8 stops inlining `s.charCodeAt(i)` call sites (~5x slower in these per-character loops).
// Calling the method captured here (`charCodeAt.call(s, i)`) stays fast under that deopt.
const charCodeAt = String.prototype.charCodeAt;

/**
 * The pattern layer: the backstop for PHI nobody declared. Each rule is one regular expression
 * (the definition of what it masks) plus a validator for checksums and ranges.
 *
 * Running ~30 regular expressions over every log line would cost several times what pino itself
 * spends on the line, so the hot path does not: one pass over the characters splits the text into
 * words and tries a rule, anchored (sticky), only where its first word has the right shape (a
 * 3-digit word before `-` for an SSN, a keyword for an MRN…). `scanPatternsExhaustive` runs every
 * rule at every position instead; the tests assert that both find the same spans, so the
 * prefilter can only make redaction faster, never weaker.
 */

// Boundaries: ASCII alphanumerics delimit words (the lexer uses the same definition).
const NB = '(?<![A-Za-z0-9])';
const NA = '(?![A-Za-z0-9])';
// A number that is not a fragment of a longer dotted, dashed or slashed number.
const NBN = '(?<![A-Za-z0-9]|\\d[-./])';
const NAN = '(?![A-Za-z0-9]|[-./]\\d)';

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
/** Any mix of upper and lower case, for words that follow a keyword (`No.`, `ID`, `number`). */
const anyCase = (s: string): string => escapeRe(s).replace(/[a-z]/gi, (c) => `[${c.toLowerCase()}${c.toUpperCase()}]`);
const title = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

/**
 * A trigger word in the three spellings logs use: `member`, `Member`, `MEMBER`. Lower and title
 * case may run on into camelCase (`memberId`), upper case may not (`MEMBERSHIP`). The lexer
 * recognises exactly these forms by the lower-cased head of a word, which is what keeps the fast
 * path and the exhaustive path equal.
 */
function kw(word: string): string {
  const lower = escapeRe(word.toLowerCase());
  const forms = [`${lower}(?![a-z])`, `${escapeRe(title(word.toLowerCase()))}(?![a-z])`, `${escapeRe(word.toUpperCase())}(?![A-Za-z])`];
  return `(?:${[...new Set(forms)].join('|')})`;
}
/** A phrase of trigger words (`medical record`), joined by nothing, spaces, `_` or `-`. */
const phrase = (p: string): string => p.split(' ').map(kw).join('[ \\t_-]{0,2}');
const phrases = (ps: readonly string[]): string =>
  `(?:${[...ps]
    .sort((a, b) => b.length - a.length)
    .map(phrase)
    .join('|')})`;
/** Upper-case-only trigger words (`SN`, `DL`, `DEA`): lower case would match ordinary words. */
const upperOnly = (ps: readonly string[]): string => `(?:${ps.map((p) => `${escapeRe(p)}(?![A-Za-z])`).join('|')})`;

const SUFFIX_WORDS = `(?:${['identifier', 'number', 'nbr', 'num', 'no.', 'no', 'id'].map(anyCase).join('|')}|#)`;
const SUFFIX = `(?:[ \\t_-]{0,2}${SUFFIX_WORDS})?`;
const SUFFIX_REQUIRED = `[ \\t_-]{0,2}${SUFFIX_WORDS}`;
// Between a keyword and its value: `: `, ` = `, `#`, or the `":"` of a serialized JSON line.
const SEP = `[ \\t"':=#.\\-]{0,6}`;
// Words between a keyword and its value in prose: `policy number is …`, `account ending in …`.
const CONNECT = `(?:[ \\t]+(?:is|was|of|reads|ending[ \\t]+in|number|no\\.?|#)){0,2}`;
// An identifier after a keyword: 4-24 characters with at least four digits.
// Case numbers are written with slashes too (`2023/ABC/456`), inside only.
const ID = `((?=(?:[A-Za-z/-]*\\d){4})[A-Za-z0-9][A-Za-z0-9/-]{2,22}[A-Za-z0-9])${NA}`;
// Policy and case numbers are also written as three digits and letters (`123ABC`, `XYZ789`).
const ID3 = `((?=(?:[A-Za-z/-]*\\d){3})[A-Za-z0-9][A-Za-z0-9/-]{2,22}[A-Za-z0-9])${NA}`;
/** Keywords of identifiers found by their keyword alone (see `id-context`). */
const ID_KEYWORDS = [
  'transaction',
  'txn',
  'invoice',
  'case',
  'claim',
  'ticket',
  'order',
  'confirmation',
  'tracking',
  'booking',
  'reservation',
  'reference',
  'student',
  'employee',
  'pesel',
  'nip',
  'passport',
  'tax',
  'national',
  'customer',
  'client',
  'badge',
  'application',
  'docket',
  'file',
  'authorization',
  'auth',
  'prior auth',
  'referral',
  'encounter',
  'visit',
  'admission',
  'episode',
  'specimen',
  'accession',
  'rx',
  'prescription',
  'subscription',
  'membership',
  'loyalty',
  'petition',
  'inquiry',
  'receipt',
  'shipment',
  'complaint',
  'incident',
  'warranty',
  'appointment',
];
/** An acronym in parentheses after a keyword: `tax identification number (NIP)`. */
const ACRONYM = `(?:[ \\t]*\\([A-Z]{2,8}\\))?`;
/** Function words between a keyword and its value, ending in `is`, `was` or `number`: not a free clause. */
const ID_CLAUSE = `(?:[ \\t]+(?:for|on|of|this|that|the|your|my|our|his|her|its|request|issue|matter|query|filed|registered|listed|under|was|is)){1,5}[ \\t]+(?:is|was|number|no\\.?)`;
const DEVICE_ID = `((?=(?:[A-Za-z()._:-]*\\d){4})[A-Za-z0-9(][A-Za-z0-9()._:/-]{2,60}[A-Za-z0-9)])${NA}`;

const MONTH_WORDS = [
  'january',
  'february',
  'march',
  'april',
  'may',
  'june',
  'july',
  'august',
  'september',
  'october',
  'november',
  'december',
  'sept',
  'jan',
  'feb',
  'mar',
  'apr',
  'jun',
  'jul',
  'aug',
  'sep',
  'oct',
  'nov',
  'dec',
] as const;
const MONTH_NUMBER: ReadonlyMap<string, number> = new Map(
  MONTH_WORDS.map((m) => [
    m,
    m === 'sept' ? 9 : ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'].indexOf(m.slice(0, 3)) + 1,
  ]),
);
const monthForms = (words: readonly string[]): string =>
  `(?:${[...words]
    .sort((a, b) => b.length - a.length)
    .flatMap((m) => [m, title(m), m.toUpperCase()])
    .map(escapeRe)
    .join('|')})`;
const MONTHS = monthForms(MONTH_WORDS);
const MONTHS3 = monthForms(MONTH_WORDS.filter((m) => m.length === 3));
const WEEKDAY_WORDS = [
  'monday',
  'tuesday',
  'wednesday',
  'thursday',
  'friday',
  'saturday',
  'sunday',
  'tues',
  'thurs',
  'mon',
  'tue',
  'wed',
  'thu',
  'fri',
  'sat',
  'sun',
] as const;
/** A weekday before a date belongs to it: `Monday, March 1, 2021`, `Mon, 1 Mar 2021`. */
const WEEKDAY_PREFIX = `(?:${monthForms(WEEKDAY_WORDS)}\\.?,?[ \\t]+)?`;
/**
 * A machine-written clock time (seconds, and a zone) on a date belongs to it: an e-mail header's
 * `Mon, 01 Jan 2024 10:00:00 -0500`. A time a person writes (`at 9:15 AM`) and a time alone stay readable.
 */
const TIME_TAIL = `(?:,?[ \\t]+(?:[01]\\d|2[0-3]):[0-5]\\d:[0-5]\\d(?:[ \\t]+(?:[+-](?:0\\d|1[0-4])[0-5]\\d|UTC|GMT))?)?`;
/** Seasons: with a year they date something more closely than the year alone does. */
const SEASONS = ['spring', 'summer', 'fall', 'autumn', 'winter'];

const STATES = [
  'AL',
  'AK',
  'AZ',
  'AR',
  'CA',
  'CO',
  'CT',
  'DE',
  'DC',
  'FL',
  'GA',
  'HI',
  'ID',
  'IL',
  'IN',
  'IA',
  'KS',
  'KY',
  'LA',
  'ME',
  'MD',
  'MA',
  'MI',
  'MN',
  'MS',
  'MO',
  'MT',
  'NE',
  'NV',
  'NH',
  'NJ',
  'NM',
  'NY',
  'NC',
  'ND',
  'OH',
  'OK',
  'OR',
  'PA',
  'RI',
  'SC',
  'SD',
  'TN',
  'TX',
  'UT',
  'VT',
  'VA',
  'WA',
  'WV',
  'WI',
  'WY',
  'PR',
  'GU',
  'VI',
  'AS',
  'MP',
] as const;
const STATE = `(?:${STATES.join('|')})`;

// The street suffixes of USPS Publication 28 (appendix C1), spelt out and abbreviated.
const STREET_SUFFIXES = [
  'Street',
  'St',
  'Streets',
  'Avenue',
  'Ave',
  'Av',
  'Road',
  'Rd',
  'Roads',
  'Boulevard',
  'Blvd',
  'Lane',
  'Ln',
  'Drive',
  'Dr',
  'Drives',
  'Court',
  'Ct',
  'Courts',
  'Way',
  'Ways',
  'Place',
  'Pl',
  'Terrace',
  'Ter',
  'Circle',
  'Cir',
  'Circles',
  'Parkway',
  'Pkwy',
  'Highway',
  'Hwy',
  'Square',
  'Sq',
  'Squares',
  'Trail',
  'Trl',
  'Alley',
  'Aly',
  'Plaza',
  'Plz',
  'Loop',
  'Crescent',
  'Pike',
  'Route',
  'Rte',
  'Expressway',
  'Expy',
  'Freeway',
  'Fwy',
  'Causeway',
  'Row',
  'Walk',
  'Walks',
  'Gardens',
  'Garden',
  'Gdns',
  'Canyon',
  'Fort',
  'Hill',
  'Hills',
  'Shoal',
  'Shoals',
  'Mountain',
  'Mountains',
  'Island',
  'Islands',
  'Isle',
  'Via',
  'Extension',
  'Extensions',
  'Ext',
  'Summit',
  'Crossing',
  'Xing',
  'Estates',
  'Estate',
  'Heights',
  'Hts',
  'Junction',
  'Junctions',
  'Landing',
  'Meadow',
  'Meadows',
  'Mill',
  'Mills',
  'Park',
  'Parks',
  'Point',
  'Points',
  'Ridge',
  'Ridges',
  'River',
  'Spring',
  'Springs',
  'Station',
  'Valley',
  'Valleys',
  'View',
  'Views',
  'Village',
  'Villages',
  'Ville',
  'Vista',
  'Creek',
  'Crest',
  'Cove',
  'Coves',
  'Bend',
  'Bluff',
  'Bluffs',
  'Branch',
  'Bridge',
  'Brook',
  'Brooks',
  'Burg',
  'Burgs',
  'Bypass',
  'Camp',
  'Cape',
  'Center',
  'Centers',
  'Cliff',
  'Cliffs',
  'Club',
  'Common',
  'Commons',
  'Corner',
  'Corners',
  'Course',
  'Curve',
  'Dale',
  'Dam',
  'Divide',
  'Field',
  'Fields',
  'Flat',
  'Flats',
  'Ford',
  'Fords',
  'Forest',
  'Forge',
  'Forges',
  'Fork',
  'Forks',
  'Gateway',
  'Glen',
  'Glens',
  'Green',
  'Greens',
  'Grove',
  'Groves',
  'Harbor',
  'Harbors',
  'Haven',
  'Hollow',
  'Inlet',
  'Key',
  'Keys',
  'Knoll',
  'Knolls',
  'Lake',
  'Lakes',
  'Land',
  'Light',
  'Lights',
  'Lock',
  'Locks',
  'Lodge',
  'Manor',
  'Manors',
  'Mission',
  'Motorway',
  'Mount',
  'Neck',
  'Orchard',
  'Oval',
  'Overpass',
  'Pass',
  'Passage',
  'Path',
  'Pine',
  'Pines',
  'Plain',
  'Plains',
  'Port',
  'Ports',
  'Prairie',
  'Radial',
  'Ramp',
  'Ranch',
  'Rapid',
  'Rapids',
  'Rest',
  'Run',
  'Shore',
  'Shores',
  'Skyway',
  'Spur',
  'Spurs',
  'Stravenue',
  'Stream',
  'Throughway',
  'Trace',
  'Track',
  'Trafficway',
  'Tunnel',
  'Turnpike',
  'Underpass',
  'Union',
  'Unions',
  'Viaduct',
  'Wall',
  'Well',
  'Wells',
] as const;
const STREET_SUFFIX = `(?:${[...STREET_SUFFIXES]
  .sort((a, b) => b.length - a.length)
  .flatMap((s) => [s, s.toUpperCase()])
  .join('|')})`;
/** The suffixes that name a street on their own (`street-name`): no `Dr`, `Park`, `Hill`… that name other things. */
const STREET_NAME_SUFFIXES = [
  'Street',
  'St',
  'Avenue',
  'Ave',
  'Road',
  'Rd',
  'Boulevard',
  'Blvd',
  'Lane',
  'Ln',
  'Way',
  'Place',
  'Court',
  'Parkway',
  'Pkwy',
  'Highway',
  'Hwy',
  'Terrace',
  'Circle',
];
const STREET_WORD = `(?:[A-Z][A-Za-z'\u2019-]*|\\d{1,3}(?:st|nd|rd|th|ST|ND|RD|TH))`;
// Not `Fl`: `, FL 33101` is Florida.
const UNIT_WORDS = ['Apartment', 'Apt', 'Suite', 'Ste', 'Unit', 'Room', 'Rm', 'Floor', 'Bldg', 'Building'];
const UNIT = `(?:,?[ \\t]+(?:${UNIT_WORDS.flatMap((u) => [u, u.toUpperCase()]).join('|')})\\.?[ \\t]*#?[ \\t]*[A-Za-z0-9-]{1,6}${NA}|[ \\t]*#[ \\t]*[A-Za-z0-9-]{1,6}${NA})`;
// After the street: the city (a comma or a new line before it), then optionally the state and
// the ZIP code, all one ADDRESS span. A capitalised word before a `:` is the next field's label.
const CITY_WORD = `[A-Z][A-Za-z'\u2019-]+(?![A-Za-z'\u2019-]*[ \\t]*:)`;
const CITY = `(?:(?:,[ \\t]*|[ \\t]*\\r?\\n[ \\t]*)${CITY_WORD}(?:[ \\t]+${CITY_WORD}){0,2}(?:,?[ \\t]+${STATE}(?![A-Za-z])|,[ \\t]*[A-Z][a-z]+(?:[ \\t]+[A-Z][a-z]+)?(?=,?[ \\t]+\\d{5}(?![0-9])))?(?:,?[ \\t]+(?:USA|U\\.S\\.A\\.?|United[ \\t]+States|D\\.C\\.?)(?![A-Za-z]))?(?:,?[ \\t]+\\d{5}(?:-\\d{4})?(?![0-9]))?)`;

const MBI_L = 'AC-HJKMNP-RT-Yac-hjkmnp-rt-y';

type Evaluate = (m: RegExpExecArray, text: string, out: Span[]) => void;

interface RuleSpec {
  name: string;
  source: string;
  evaluate: Evaluate;
}

/** A rule compiled twice: sticky for the anchored fast path, global for the exhaustive one. */
export interface Rule {
  readonly name: string;
  readonly sticky: RegExp;
  readonly global: RegExp;
  readonly evaluate: Evaluate;
}

const digitsOf = (s: string): string => s.replace(/\D/g, '');
const ID_BEFORE = /(?:#|\b(?:acct|account|mrn|id|no|number|policy|member|claim|invoice|order|case|ref|reference|npi|transaction|routing)\b)[ \t:.=#-]*$/i;

/**
 * Path segments that name a collection of people or of their records: the segment after one
 * (`/patients/12345`, `/members/ZZT100200301`, `/users/jane-doe`) identifies someone. Compared
 * lower-cased, without `-`, `_` and a trailing `id`/`ids` (`patient-id`, `memberIds`).
 */
const URL_PERSON_WORDS = new Set(
  [
    'patient',
    'member',
    'mbr',
    'subscriber',
    'beneficiary',
    'beneficiaries',
    'enrollee',
    'insured',
    'dependent',
    'person',
    'persons',
    'people',
    'user',
    'u',
    'profile',
    'customer',
    'client',
    'account',
    'acct',
    'chart',
    'record',
    'mrn',
    'encounter',
    'visit',
    'appointment',
    'claim',
    'case',
    'contact',
    'employee',
    'student',
    'resident',
    'guarantor',
    'caregiver',
    'guardian',
    'provider',
    'doctor',
    'physician',
  ].flatMap((w) => (w.endsWith('s') || w.endsWith('ies') || w === 'people' || w === 'u' ? [w] : [w, `${w}s`])),
);
/**
 * Segments after a person word that are a route, not someone (`/patients/search`). Anything else
 * there is masked: a number, a name (`john-smith`, `Okafor`), a user name, a hash.
 */
const URL_ROUTE_WORDS = new Set([
  'new',
  'search',
  'list',
  'all',
  'edit',
  'create',
  'add',
  'update',
  'delete',
  'remove',
  'lookup',
  'find',
  'query',
  'index',
  'me',
  'self',
  'current',
  'mine',
  'details',
  'detail',
  'summary',
  'status',
  'history',
  'export',
  'import',
  'upload',
  'download',
  'settings',
  'overview',
  'dashboard',
  'home',
  'login',
  'logout',
  'signin',
  'signout',
  'register',
  'signup',
  'active',
  'inactive',
  'recent',
  'pending',
  'open',
  'closed',
  'count',
  'stats',
  'page',
  'view',
  'print',
  'report',
  'reports',
  'batch',
  'bulk',
  'filter',
  'verify',
  'eligibility',
  'coverage',
  'benefits',
  'intake',
  'admin',
  'api',
  'v1',
  'v2',
  'v3',
  'password',
  'security',
  'preferences',
  'billing',
  'notifications',
  'documents',
  'messages',
  'info',
  'information',
  'upcoming',
  'past',
  'today',
  'scheduled',
  'schedule',
  'calendar',
]);
/** A record number as a path segment: letters, then five or more digits (`ZZT100200301`, `CLM-2024-10001`, `123456789`). */
// Not a dotted version (`131.0.6778.85`), a hash or a ULID: digits are not broken up by letters or dots.
const URL_ID_SEGMENT = /^[A-Za-z]{0,10}[-_.:]?\d[\d_-]*\d[A-Za-z]{0,3}$/;
const URL_FILE_EXTENSION = /\.(?:html?|php|aspx?|jsp|json|xml|js|mjs|css|png|jpe?g|gif|svg|ico|pdf|txt|csv|webp|woff2?|map)$/i;

/** Whether a URL's path (from its first `/`, query and fragment included) names a person or a record. */
function urlPathCarriesPhi(path: string): boolean {
  const q = path.indexOf('?');
  const hash = path.indexOf('#');
  // The fragment is a path too in single-page apps (`#/patients/12345`).
  const parts = q < 0 ? path : path.slice(0, q) + (hash > q ? path.slice(hash) : '');
  let afterPerson = false;
  for (const raw of parts.split(/[/#]/)) {
    if (raw === '') continue;
    let segment = raw;
    if (segment.includes('%')) {
      try {
        segment = decodeURIComponent(segment);
      } catch {
        // A malformed escape: read the segment as written.
      }
    }
    const bare = segment.replace(URL_FILE_EXTENSION, '');
    const key = bare.toLowerCase().replace(/[-_]/g, '').replace(/ids?$/, '');
    if (afterPerson && !URL_PERSON_WORDS.has(key) && !URL_ROUTE_WORDS.has(bare.toLowerCase()) && !bare.startsWith(':')) return true;
    // A handle (`/@jdoe`, `/~jdoe`), a record number anywhere, an email address in the path.
    if (/^[@~][A-Za-z]/.test(bare) || bare.includes('@')) return true;
    if (URL_ID_SEGMENT.test(bare) && digitsOf(bare).length >= 5) return true;
    afterPerson = URL_PERSON_WORDS.has(key) && key !== '';
  }
  return false;
}

/** The whole match is the span. */
function whole(label: PatternLabel, valid?: (m: RegExpExecArray) => boolean): Evaluate {
  return (m, _text, out) => {
    if (valid && !valid(m)) return;
    out.push({ start: m.index, end: m.index + m[0].length, label });
  };
}

/** A day written as an ordinal is read with its article (`the 15th`, `the 3rd of March`): it is masked along. */
function withArticle(inner: Evaluate): Evaluate {
  return (m, text, out) => {
    const before = out.length;
    inner(m, text, out);
    const span = out[before];
    if (!span || !/^\d/.test(text.slice(span.start, span.start + 1))) return;
    const article = /(?<![A-Za-z0-9])[Tt]he[ \t]+$/.exec(text.slice(Math.max(0, span.start - 12), span.start));
    if (article) span.start -= article[0].length;
  };
}

/** Group 1 is context (a keyword and separator) that stays; group 2 is masked. */
function afterPrefix(label: PatternLabel, valid?: (target: string, m: RegExpExecArray) => boolean): Evaluate {
  return (m, _text, out) => {
    const prefix = m[1] ?? '';
    const target = m[2];
    if (target === undefined || (valid && !valid(target, m))) return;
    let start = m.index + prefix.length;
    // `case ID #987654`: the `#` written onto the value is part of how it is written.
    if (prefix.endsWith('#')) start--;
    out.push({ start, end: m.index + prefix.length + target.length, label });
  };
}

/** Phone or fax: the nearest of these words before the number decides. */
function phoneLabel(text: string, start: number): PatternLabel {
  // Only the words since the previous number count: `fax 1…, phone 2…` labels each correctly.
  let before = text.slice(Math.max(0, start - 30), start).toLowerCase();
  const lastDigit = before.search(/\d[^\d]*$/);
  if (lastDigit >= 0) before = before.slice(lastDigit + 1);
  const fax = before.lastIndexOf('fax');
  if (fax < 0) return 'PHONE';
  const other = Math.max(before.lastIndexOf('phone'), before.lastIndexOf('tel'), before.lastIndexOf('cell'), before.lastIndexOf('mobile'));
  return fax > other ? 'FAX' : 'PHONE';
}

/** A word that says a phone number follows, within the 80 characters before `start`. */
const PHONE_WORD = /(?<![A-Za-z])(?:phone|telephone|tel|cell|cellphone|mobile|fax|number|call|text|reach|contact|ph)(?![a-z])/i;
function phoneWordBefore(text: string, start: number): boolean {
  return PHONE_WORD.test(text.slice(Math.max(0, start - 80), start));
}

const nanpValid = (ten: string): boolean => ten.length === 10 && charCodeAt.call(ten, 0) >= 50 && charCodeAt.call(ten, 3) >= 50;

function numericDateValid(a: number, b: number, yearText: string, sep: string): boolean {
  let year = Number(yearText);
  if (yearText.length === 2) {
    // Two-digit years are dates only with `/` or `-`: `1.2.33` is a version.
    if (sep === '.') return false;
    year += year >= 30 ? 1900 : 2000;
  }
  return plausibleDate(year, a, b) || plausibleDate(year, b, a);
}

function compactDateValid(d: string): boolean {
  const n = (from: number, len: number): number => Number(d.slice(from, from + len));
  return plausibleDate(n(0, 4), n(4, 2), n(6, 2)) || plausibleDate(n(4, 4), n(0, 2), n(2, 2));
}

/** Lower-case `may` and `march` are usually words, not months, unless a year follows. */
function writtenDateValid(monthWord: string, dayText: string | undefined, yearText: string | undefined): boolean {
  const month = MONTH_NUMBER.get(monthWord.toLowerCase());
  if (month === undefined) return false;
  if (yearText === undefined && /^(?:may|mar|march)$/.test(monthWord)) return false;
  let year = yearText === undefined ? 2000 : Number(yearText);
  if (yearText !== undefined && yearText.length === 2) year += year >= 30 ? 1900 : 2000;
  return plausibleDate(year, month, dayText === undefined ? 1 : Number(dayText));
}

/** Words of a question for an identifier (`account number?`, `order ID`, `last four digits`). */
const ID_QUESTION = /(?:account|acct|number|\bid\b|ID|order|subscription|reference|member|policy|confirmation|digits|card|case|ticket|claim)/i;

const idHasDigits =
  (min: number) =>
  (target: string): boolean =>
    digitsOf(target).length >= min;
/** Four digits, or three with at least two letters (`123ABC`): what ID3 may match. */
const idShaped = (target: string): boolean => {
  const digits = digitsOf(target).length;
  return digits >= 4 || (digits === 3 && target.replace(/[^A-Za-z]/g, '').length >= 2);
};

/**
 * The part of the JSON value at `p` to censor: a string's contents, a whole object, array or
 * number; nothing for `null`, `true`, `false`. An unterminated value is censored to the end.
 */
function jsonValueRange(text: string, p: number): [number, number] | undefined {
  const c = charCodeAt.call(text, p);
  if (c === 34) {
    for (let q = p + 1; q < text.length; q++) {
      const d = charCodeAt.call(text, q);
      if (d === 92) q++;
      else if (d === 34) return q > p + 1 ? [p + 1, q] : undefined;
    }
    return [p + 1, text.length];
  }
  if (c === 123 || c === 91) {
    let depth = 0;
    let inString = false;
    for (let q = p; q < text.length; q++) {
      const d = charCodeAt.call(text, q);
      if (inString) {
        if (d === 92) q++;
        else if (d === 34) inString = false;
      } else if (d === 34) inString = true;
      else if (d === 123 || d === 91) depth++;
      else if ((d === 125 || d === 93) && --depth === 0) return [p, q + 1];
    }
    return [p, text.length];
  }
  let e = p;
  while (e < text.length && !/[,}\]\s]/.test(text.charAt(e))) e++;
  const token = text.slice(p, e);
  return token === '' || token === 'null' || token === 'true' || token === 'false' ? undefined : [p, e];
}

const SPECS: readonly RuleSpec[] = [
  // --- SSN ---
  {
    name: 'ssn',
    source: `${NBN}\\d{3}([- ])\\d{2}\\1\\d{4}${NAN}`,
    evaluate: whole('SSN', (m) => ssnValid(digitsOf(m[0]))),
  },
  {
    name: 'ssn-context',
    source: `(${NB}${phrases(['ssn', 'ss#', 'social security', 'soc sec'])}${SUFFIX}${SEP})(\\d{9})${NA}`,
    evaluate: afterPrefix('SSN', (t) => ssnValid(t)),
  },
  // --- phone and fax ---
  {
    name: 'phone',
    source: `(?<![A-Za-z0-9+]|\\d[-.])(\\+?1[-. ]?|00?1[-. ])?(?:\\((\\d{3})\\)[-. ]?|(\\d{3})([-. ]))(\\d{3})[-. ](\\d{4})(?:[ ]?(?:x|ext\\.?|extension)[ ]?\\d{1,5})?${NAN}`,
    evaluate: (m, text, out) => {
      // `(555) 123-4567` and `555-123-4567` are phones by shape (a valid area code is enough: made-up
      // exchanges like 123 are still someone's way of writing a number); spaced digits need a valid number.
      // An area code starting 0 or 1 (`(123) 456-7890`) is a made-up number too when a phone word
      // comes before it; alone it may be a code of another kind.
      const area = m[2] ?? m[3] ?? '';
      const shaped = m[2] !== undefined || m[4] === '-' || m[4] === '.';
      if (shaped ? charCodeAt.call(area, 0) < 50 && !phoneWordBefore(text, m.index) : !nanpValid(area + (m[5] ?? '') + (m[6] ?? ''))) return;
      out.push({ start: m.index, end: m.index + m[0].length, label: phoneLabel(text, m.index) });
    },
  },
  {
    // A local number without its area code (`555-0123`), after a phone word within the last few
    // lines of a chat (`What's your number?` … `It's 555-0123`): alone, `200-1000` is a range.
    name: 'phone-local',
    // Not the tail of a longer number: `(212) 555-0106`, `212 555-0106` are the phone rule's.
    source: `(?<![A-Za-z0-9+]|\\d[-./ ]|\\)[ ]?)[2-9]\\d{2}[-.]\\d{4}${NAN}`,
    evaluate: (m, text, out) => {
      if (phoneWordBefore(text, m.index)) out.push({ start: m.index, end: m.index + m[0].length, label: phoneLabel(text, m.index) });
    },
  },
  {
    name: 'phone-international',
    source: `(?<![A-Za-z0-9+])\\+(?:\\d{8,15}(?![0-9])|[1-9]\\d{0,2}(?:[-. ]?\\(?\\d{1,4}\\)?){2,5})${NAN}`,
    evaluate: (m, text, out) => {
      const d = digitsOf(m[0]);
      const compact = /^\+\d+$/.test(m[0]);
      if (!compact && d.startsWith('1') && m[0].startsWith('+1') && d.length === 11 ? !nanpValid(d.slice(1)) : d.length < 8 || d.length > 15) return;
      out.push({ start: m.index, end: m.index + m[0].length, label: phoneLabel(text, m.index) });
    },
  },
  {
    // A placeholder that names what it holds, `[PHONE: +1-555-123-4567]` (a template's or an
    // anonymiser's tag left in text): the label vouches for the value, and the tag goes as one.
    name: 'labelled-tag',
    source: `(?<=\\[)(PHONE|TEL|TELEPHONE|FAX|EMAIL|E-MAIL|ADDRESS|DOB|SSN|MRN)(?:[ _]NUMBER)?:[ \\t]*[^\\]\\n]{3,120}\\]`,
    evaluate: (m, _text, out) => {
      const tag = m[1] ?? '';
      const label: PatternLabel =
        tag === 'FAX'
          ? 'FAX'
          : tag.startsWith('TEL') || tag === 'PHONE'
            ? 'PHONE'
            : tag.includes('MAIL')
              ? 'EMAIL'
              : tag === 'DOB'
                ? 'DATE'
                : (tag as PatternLabel);
      out.push({ start: m.index - 1, end: m.index + m[0].length, label });
    },
  },
  {
    name: 'phone-context',
    source: `(${NB}(?:${phrases(['phone', 'telephone', 'tel', 'fax', 'cell', 'cellphone', 'mobile', 'ph'])}${SUFFIX}|${phrases(['call', 'contact', 'reach', 'text', 'number', 'contact number', 'phone number'])}(?:[ \\t]+(?:me|us|him|her|them))?(?:[ \\t]+(?:is|at|on))?)${SEP})(\\+?1?\\d{10}|\\d{3}[-. ]\\d{4})${NA}`,
    evaluate: (m, text, out) => {
      const target = m[2];
      if (target === undefined) return;
      const d = digitsOf(target);
      // After a phone word the keyword vouches for the shape: a 7-digit local number needs a valid
      // exchange, a 10-digit one a valid area code (made-up exchanges such as 010 are still a number).
      if (charCodeAt.call(d.length === 7 ? d : d.slice(-10), 0) < 50) return;
      const start = m.index + (m[1] ?? '').length;
      out.push({ start, end: start + target.length, label: /^fax/i.test(m[1] ?? '') ? 'FAX' : phoneLabel(text, start) });
    },
  },
  {
    // Ten digits that form a valid North American number: `contact 7305564139`.
    name: 'phone-bare',
    source: `${NBN}[2-9]\\d{2}[2-9]\\d{6}${NAN}`,
    evaluate: (m, text, out) => {
      // After an identifier's keyword (`Acct# 4455667788`) the id rule labels it.
      if (!nanpValid(m[0]) || ID_BEFORE.test(text.slice(Math.max(0, m.index - 24), m.index))) return;
      out.push({ start: m.index, end: m.index + m[0].length, label: phoneLabel(text, m.index) });
    },
  },
  // --- email, URL, IP ---
  {
    name: 'email',
    source: `(?<![A-Za-z0-9._%+\\-])[A-Za-z0-9][A-Za-z0-9._%+\\-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)+[A-Za-z]{2,24}(?![A-Za-z0-9-])`,
    evaluate: whole('EMAIL'),
  },
  {
    // With a scheme (or `www.`): masked whole when it has a query, a user name (`user:pw@host`), or
    // a path or fragment that names a person or a record (see `urlPathCarriesPhi`).
    name: 'url',
    source: `${NB}(?:${['https', 'http', 'ftp'].map((s) => `(?:${s}|${title(s)}|${s.toUpperCase()})`).join('|')}:\\/\\/|(?:www|WWW)\\.)[^\\s"'<>\\\\^\`{|}]+`,
    evaluate: (m, _text, out) => {
      // Sentence punctuation after a URL is not part of it.
      const url = m[0].replace(/[.,;:!)\]]+$/, '');
      const q = url.indexOf('?');
      const scheme = url.indexOf('://');
      const rest = scheme >= 0 ? url.slice(scheme + 3) : url;
      const authorityEnd = rest.search(/[/?#]/);
      const authority = authorityEnd < 0 ? rest : rest.slice(0, authorityEnd);
      const hasQuery = q >= 0 && q < url.length - 1;
      if (!hasQuery && !(scheme >= 0 && authority.includes('@')) && !(authorityEnd >= 0 && urlPathCarriesPhi(rest.slice(authorityEnd)))) return;
      out.push({ start: m.index, end: m.index + url.length, label: 'URL' });
    },
  },
  {
    // Without a scheme: `example.com/search?q=…`, or a request path `/eligibility?memberId=…`.
    name: 'url-path',
    source: `(?<![^\\s"'<>\\\\^\`{|}(),;=])(?:(?:[A-Za-z0-9-]+\\.)+[A-Za-z]{2,24}(?::\\d{1,5})?)?\\/[^\\s"'<>\\\\^\`{|}?]*\\?[^\\s"'<>\\\\^\`{|}=]*=[^\\s"'<>\\\\^\`{|}]*`,
    evaluate: (m, _text, out) => {
      const url = m[0].replace(/[.,;:!)\]]+$/, '');
      out.push({ start: m.index, end: m.index + url.length, label: 'URL' });
    },
  },
  {
    // Without a scheme, no query: `portal.example.com/patients/12345`, a request path
    // `/members/ZZT100200301/claims`; masked only when the path names a person or a record.
    name: 'url-path-id',
    source: `(?<![^\\s"'<>\\\\^\`{|}(),;=])(?:(?:[A-Za-z0-9-]+\\.)+[A-Za-z]{2,24}(?::\\d{1,5})?)?\\/[^\\s"'<>\\\\^\`{|}]*`,
    evaluate: (m, _text, out) => {
      const url = m[0].replace(/[.,;:!)\]]+$/, '');
      if (!urlPathCarriesPhi(url.slice(url.indexOf('/')))) return;
      out.push({ start: m.index, end: m.index + url.length, label: 'URL' });
    },
  },
  {
    name: 'ipv4',
    source: `(?<![A-Za-z0-9.])(?:(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)\\.){3}(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)(?![A-Za-z0-9]|\\.\\d)`,
    evaluate: whole('IP'),
  },
  {
    name: 'ipv6',
    source: `(?<![A-Za-z0-9:.])(?=[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:)[0-9A-Fa-f:.]{2,45}`,
    evaluate: (m, _text, out) => {
      const candidate = m[0].replace(/\.+$/, '');
      if (!/[0-9A-Fa-f]/.test(candidate) || !isIPv6(candidate)) return;
      out.push({ start: m.index, end: m.index + candidate.length, label: 'IP' });
    },
  },
  // --- dates and ages ---
  {
    name: 'date-mdy',
    source: `${NBN}(\\d{1,2})([/.-])(\\d{1,2})\\2(\\d{4}|\\d{2})${TIME_TAIL}${NAN}`,
    evaluate: whole('DATE', (m) => numericDateValid(Number(m[1]), Number(m[3]), m[4] ?? '', m[2] ?? '')),
  },
  {
    name: 'date-ymd',
    source: `${NBN}(\\d{4})([/.-])(\\d{1,2})\\2(\\d{1,2})(?:T\\d{2}:\\d{2}(?::\\d{2}(?:\\.\\d{1,9})?)?(?:Z|[+-]\\d{2}:?\\d{2})?)?${NAN}`,
    evaluate: whole('DATE', (m) => plausibleDate(Number(m[1]), Number(m[3]), Number(m[4]))),
  },
  {
    name: 'date-context',
    source: `(${NB}${phrases(['dob', 'd.o.b.', 'd.o.b', 'date of birth', 'birth date', 'birthdate', 'born', 'dos', 'date of service', 'service date', 'admit date', 'admission date', 'admitted', 'discharge date', 'discharged'])}${SEP})(\\d{8})${NA}`,
    evaluate: afterPrefix('DATE', (t) => compactDateValid(t)),
  },
  {
    name: 'date-month-first',
    source: `${NB}${WEEKDAY_PREFIX}(${MONTHS})\\.?(?:,?[ \\t]+|-)(?:(\\d{1,2})(?:st|nd|rd|th)?(?:(?:,?[ \\t]+|-)(\\d{4}))?|(\\d{4}))${TIME_TAIL}${NA}`,
    evaluate: whole('DATE', (m) => writtenDateValid(m[1] ?? '', m[2], m[3] ?? m[4])),
  },
  {
    name: 'date-day-first',
    source: `${NB}${WEEKDAY_PREFIX}(\\d{1,2})(?:st|nd|rd|th)?(?:[ \\t]+(?:of[ \\t]+)?|-)(${MONTHS})\\.?(?:,?[ \\t]+(\\d{4})|-(\\d{4}|\\d{2}))?${TIME_TAIL}${NA}`,
    evaluate: withArticle(whole('DATE', (m) => writtenDateValid(m[2] ?? '', m[1], m[3] ?? m[4]))),
  },
  {
    // A day alone after a date word: `on the 15th`, `from 15th to 20th`.
    name: 'date-ordinal',
    source: `(?<=(?<![A-Za-z0-9])(?:[Oo]n|[Tt]he|[Bb]y|[Uu]ntil|[Bb]efore|[Aa]fter|[Ss]ince|[Ff]rom|[Tt]o|and|[Dd]ue)[ \\t]+)(?:0?[1-9]|[12]\\d|3[01])(?:st|nd|rd|th)(?![A-Za-z0-9])(?![ \\t]+(?:${['floor', 'grade', 'percentile', 'place', 'time', 'times', 'day', 'week', 'month', 'year', 'birthday', 'anniversary', 'century', 'edition', 'street', 'st', 'avenue', 'ave', 'dose', 'cycle', 'trimester', 'line', 'degree', 'attempt', 'round', 'Street', 'St', 'Avenue', 'Ave', 'Road', 'Rd', 'Floor'].join('|')})(?![A-Za-z]))`,
    evaluate: withArticle(whole('DATE')),
  },
  {
    // A season with its year: `Fall 2023`, `Summer 2018` (a term, an internship). Quarters
    // (`Q1 2020 report`) date a business period, not a person: they stay, as the team corpus asks.
    name: 'date-season',
    source: `${NB}${monthForms(SEASONS)}[ \\t]+((?:19|20)\\d\\d)${NA}`,
    evaluate: whole('DATE'),
  },
  {
    // Month and day without a year, after a date word: `on 12/05`, `due 3/14`. Alone, `1/2` is a fraction.
    name: 'date-month-day',
    source: `(?<=(?<![A-Za-z0-9])(?:[Oo]n|[Bb]y|[Uu]ntil|[Bb]efore|[Aa]fter|[Ss]ince|[Dd]ue|[Dd]ated|[Ff]rom|[Dd]ate:?|DOB:?|[Dd]ob:?)[ \\t]+)(\\d{1,2})\\/(\\d{1,2})(?![A-Za-z0-9]|[-./]\\d)`,
    evaluate: whole('DATE', (m) => plausibleDate(2000, Number(m[1]), Number(m[2]))),
  },
  {
    name: 'date-compact-month',
    source: `${NB}(\\d{2})(${MONTHS3})(\\d{4})${NA}`,
    evaluate: whole('DATE', (m) => writtenDateValid(m[2] ?? '', m[1], m[3])),
  },
  {
    name: 'age-context',
    source: `(${NB}${phrases(['age', 'aged'])}${SEP})(9\\d|1[01]\\d)${NA}`,
    evaluate: afterPrefix('AGE'),
  },
  {
    name: 'age-suffix',
    source: `${NB}(9\\d|1[01]\\d)(?=[ \\t-]{0,2}(?:${['years', 'year', 'yrs', 'yr', 'yo', 'y/o', 'y.o.'].map(anyCase).join('|')})(?![A-Za-z]))`,
    evaluate: whole('AGE'),
  },
  // --- geography ---
  {
    name: 'zip-plus4',
    source: `${NBN}\\d{5}-\\d{4}${NAN}`,
    evaluate: whole('ZIP', (m) => !m[0].startsWith('00000')),
  },
  {
    name: 'zip-after-state',
    source: `(${NB}${STATE},?[ \\t]+)(\\d{5}(?:-\\d{4})?)${NAN}`,
    evaluate: afterPrefix('ZIP', (t) => !t.startsWith('00000')),
  },
  {
    name: 'zip-context',
    source: `(${NB}${phrases(['zip', 'zip code', 'zipcode', 'postal code', 'postcode', 'post code'])}${SEP})(\\d{5}(?:-\\d{4})?)${NAN}`,
    evaluate: afterPrefix('ZIP', (t) => !t.startsWith('00000')),
  },
  {
    name: 'street-address',
    source: `${NB}\\d{1,6}[A-Za-z]?(?:-\\d{1,4})?[ \\t]+(?:${STREET_WORD}\\.?[ \\t]+){1,4}${STREET_SUFFIX}\\.?(?![A-Za-z0-9])(?:[ \\t]+(?:NE|NW|SE|SW|N|S|E|W)\\.?(?![A-Za-z0-9]))?${UNIT}?${CITY}?`,
    evaluate: whole('ADDRESS'),
  },
  {
    // A street without a house number after a word that places something on it: `the café on
    // 5th Avenue`, `meet at Main Street`. Not `Dr` (a title) nor lower-case suffixes.
    name: 'street-name',
    source: `(${NB}(?:[Oo]n|[Aa]t|[Oo]ff|[Nn]ear|[Aa]long)[ \\t]+(?:the[ \\t]+)?)((?:\\d{1,3}(?:st|nd|rd|th)|[A-Z][a-z]+)(?:[ \\t]+[A-Z][a-z]+){0,2}[ \\t]+(?:${STREET_NAME_SUFFIXES.join('|')}))(?![A-Za-z0-9])`,
    evaluate: afterPrefix('ADDRESS'),
  },
  {
    name: 'po-box',
    source: `${NB}(?:[Pp]\\.?[ \\t]?[Oo]\\.?[ \\t]*${anyCase('box')}|${kw('post')}[ \\t]+${anyCase('office')}[ \\t]+${anyCase('box')})[ \\t]*#?[ \\t]*\\d{1,6}${NA}`,
    evaluate: whole('ADDRESS'),
  },
  // --- identifiers with a checksum or a fixed shape ---
  {
    name: 'npi',
    source: `${NBN}[12]\\d{9}${NAN}`,
    evaluate: whole('NPI', (m) => npiValid(m[0])),
  },
  {
    // A card number written with its first twelve digits starred: the last four still identify it.
    name: 'card-masked',
    source: `\\*{4}[ -]?\\*{4}[ -]?\\*{4}[ -]?(\\d{4})${NA}`,
    evaluate: (m, _text, out) => {
      const end = m.index + m[0].length;
      out.push({ start: end - 4, end, label: 'CARD' });
    },
  },
  {
    // A chat's answer to a question for an identifier: `Can you give me your account number?` …
    // `Sure, it's 123456789.` The question's keyword must stand in the 100 characters before.
    name: 'id-answer',
    source: `(${NB}(?:[Ii]t(?:['\u2019]s|[ \\t]+is)|[Mm]ine[ \\t]+is|IT(?:['\u2019]S|[ \\t]+IS))[ \\t]+#?)${ID}`,
    evaluate: afterPrefix('ID', (target, m) => digitsOf(target).length >= 4 && ID_QUESTION.test(m.input.slice(Math.max(0, m.index - 100), m.index))),
  },
  {
    name: 'card',
    source: `${NBN}(?:\\d{4}(?:[ -]\\d{2,7}){2,5}|\\d{13,19})${NA}`,
    evaluate: (m, _text, out) => {
      // The run may hold more than the card (an expiry, a reference before it): try every run
      // of whole digit groups and keep the longest that is a valid card.
      const groups: { start: number; end: number; digits: string }[] = [];
      const re = /\d+/g;
      for (let g = re.exec(m[0]); g !== null; g = re.exec(m[0])) groups.push({ start: g.index, end: g.index + g[0].length, digits: g[0] });
      let best: { start: number; end: number } | undefined;
      for (let i = 0; i < groups.length; i++) {
        let digits = '';
        for (let j = i; j < groups.length; j++) {
          digits += (groups[j] as { digits: string }).digits;
          if (digits.length > 19) break;
          const s = (groups[i] as { start: number }).start;
          const e = (groups[j] as { end: number }).end;
          if (cardValid(digits) && (best === undefined || e - s > best.end - best.start)) best = { start: s, end: e };
        }
      }
      if (best) out.push({ start: m.index + best.start, end: m.index + best.end, label: 'CARD' });
    },
  },
  {
    name: 'mbi',
    source: `(?<![A-Za-z0-9]|[A-Za-z0-9]-)[1-9][${MBI_L}][${MBI_L}0-9]\\d(-?)[${MBI_L}][${MBI_L}0-9]\\d\\1[${MBI_L}]{2}\\d{2}(?![A-Za-z0-9]|-[A-Za-z0-9])`,
    evaluate: whole('MBI'),
  },
  {
    name: 'vin',
    source: `${NB}[A-HJ-NPR-Za-hj-npr-z0-9]{17}${NA}`,
    evaluate: whole('VEHICLE', (m) => /[A-Za-z].*[A-Za-z]/.test(m[0]) && digitsOf(m[0]).length >= 3 && vinValid(m[0])),
  },
  {
    name: 'dea',
    source: `${NB}[ABCDEFGHJKLMPRSTUX][A-Z9]\\d{7}${NA}`,
    evaluate: whole('LICENSE', (m) => deaValid(m[0])),
  },
  {
    name: 'mac',
    source: `(?<![A-Za-z0-9:-])[0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\\1){4}[0-9A-Fa-f]{2}(?![A-Za-z0-9:-])`,
    evaluate: whole('DEVICE'),
  },
  // --- structured fields: the value of a censored key (logging/logger.ts REDACT_KEYS) at any depth ---
  {
    name: 'json-key',
    source: `"(?:${[...REDACT_KEYS]
      .sort((a, b) => b.length - a.length)
      .map(escapeRe)
      .join('|')})"[ \\t]*:[ \\t]*`,
    evaluate: (m, text, out) => {
      const range = jsonValueRange(text, m.index + m[0].length);
      if (range) out.push({ start: range[0], end: range[1], label: 'REDACTED' });
    },
  },
  // --- identifiers found by the keyword before them ---
  {
    name: 'mrn',
    source: `(${NB}(?:${phrases(['mrn', 'medical record', 'medical records', 'med rec', 'medrec', 'emr', 'ehr'])}${SUFFIX}|${phrases(['mr', 'patient', 'chart'])}${SUFFIX_REQUIRED})${CONNECT}${SEP})${ID}`,
    evaluate: afterPrefix('MRN', idHasDigits(4)),
  },
  {
    name: 'account',
    source: `(${NB}(?:${phrases(['account', 'acct', 'billing account', 'bank account'])}${SUFFIX}|${phrases(['acc', 'billing', 'routing', 'iban'])}${SUFFIX_REQUIRED})${CONNECT}${SEP})${ID}`,
    evaluate: afterPrefix('ACCOUNT', idHasDigits(4)),
  },
  {
    name: 'health-plan',
    source: `(${NB}(?:${phrases(['member', 'subscriber', 'beneficiary', 'medicaid', 'medicare', 'insurance', 'hicn', 'enrollee'])}${SUFFIX}|${phrases(['policy', 'plan', 'health plan', 'group', 'payer', 'insured', 'coverage'])}${SUFFIX_REQUIRED})${CONNECT}${SEP})${ID3}`,
    evaluate: afterPrefix('HEALTH_PLAN', idShaped),
  },
  {
    // Other identifiers found by their keyword: claim, case, invoice, transaction, student ids…
    name: 'id-context',
    source: `(${NB}(?:${phrases(ID_KEYWORDS)}${SUFFIX}${ACRONYM}|${kw('id')}|${upperOnly(['ID'])})${CONNECT}${SEP})${ID3}`,
    evaluate: afterPrefix('ID', idShaped),
  },
  {
    // The keyword, then a short clause of function words, then the value: `the case is filed
    // under number 2023-CV-0789`, `your case ID for this request is #C54321`.
    name: 'id-context-clause',
    source: `(${NB}(?:${phrases(ID_KEYWORDS)}${SUFFIX}|${kw('id')}|${upperOnly(['ID'])})${ID_CLAUSE}${SEP})${ID3}`,
    evaluate: afterPrefix('ID', idShaped),
  },
  {
    name: 'license',
    source: `(${NB}(?:(?:${phrases(["driver's license", 'drivers license', 'driver license', "driver's licence", 'license', 'licence'])}(?![ \\t_-]{0,2}(?:[Pp]late|PLATE))|${phrases(['lic'])}\\.?|${upperOnly(['DL', 'DEA'])})${SUFFIX}|${phrases(['certificate', 'cert', 'certification', 'registration', 'permit'])}${SUFFIX_REQUIRED})${SEP})${ID}`,
    evaluate: afterPrefix('LICENSE', idHasDigits(4)),
  },
  {
    name: 'device',
    source: `(${NB}(?:${phrases(['serial', 's/n', 'imei', 'udi', 'meid'])}|${upperOnly(['SN', 'ESN'])})${SUFFIX}${SEP}|${phrases(['device', 'implant', 'pacemaker', 'equipment'])}${SUFFIX_REQUIRED}${SEP})${DEVICE_ID}`,
    evaluate: afterPrefix('DEVICE', idHasDigits(4)),
  },
  {
    name: 'vin-context',
    source: `(${NB}${phrases(['vin'])}${SUFFIX}${SEP})([A-HJ-NPR-Za-hj-npr-z0-9]{11,17})${NA}`,
    evaluate: afterPrefix('VEHICLE', idHasDigits(2)),
  },
  {
    name: 'plate-context',
    source: `(${NB}${phrases(['license plate', 'licence plate', 'plate'])}${SUFFIX}${SEP})((?=[A-Z -]{0,8}\\d)[A-Z0-9]{1,8}(?:[ -][A-Z0-9]{1,5})?)${NA}`,
    evaluate: afterPrefix('VEHICLE', (t) => t.length >= 4 && t.length <= 10),
  },
];

function compile(spec: RuleSpec): Rule {
  return { name: spec.name, sticky: new RegExp(spec.source, 'y'), global: new RegExp(spec.source, 'g'), evaluate: spec.evaluate };
}

export const RULES: readonly Rule[] = SPECS.map(compile);
const rule = (name: string): Rule => {
  const found = RULES.find((r) => r.name === name);
  if (!found) throw new Error(`no rule ${name}`);
  return found;
};

const R = {
  ssn: rule('ssn'),
  phone: rule('phone'),
  phoneLocal: rule('phone-local'),
  phoneIntl: rule('phone-international'),
  phoneBare: rule('phone-bare'),
  dateOrdinal: rule('date-ordinal'),
  dateMonthDay: rule('date-month-day'),
  email: rule('email'),
  url: rule('url'),
  urlPath: rule('url-path'),
  urlPathId: rule('url-path-id'),
  ipv4: rule('ipv4'),
  ipv6: rule('ipv6'),
  dateMdy: rule('date-mdy'),
  dateYmd: rule('date-ymd'),
  dateMonthFirst: rule('date-month-first'),
  dateDayFirst: rule('date-day-first'),
  dateCompactMonth: rule('date-compact-month'),
  ageSuffix: rule('age-suffix'),
  zip4: rule('zip-plus4'),
  zipState: rule('zip-after-state'),
  address: rule('street-address'),
  poBox: rule('po-box'),
  npi: rule('npi'),
  card: rule('card'),
  mbi: rule('mbi'),
  vin: rule('vin'),
  cardMasked: rule('card-masked'),
  dea: rule('dea'),
  mac: rule('mac'),
  jsonKey: rule('json-key'),
};

/** Hash of a lower-cased word, as the lexer computes it while it reads the characters. */
function wordHash(word: string): number {
  let h = 0;
  for (let i = 0; i < word.length && i < 24; i++) h = (Math.imul(h, 31) + charCodeAt.call(word, i)) & 0xfffffff;
  return h;
}

/**
 * The rules a word can start, keyed by the hash of the word's lower-cased head (letters up to a
 * camelCase boundary or a digit). Open addressing in typed arrays: the lexer looks up every word
 * of every log line, so this lookup must not allocate. A collision only costs one anchored try.
 */
const TABLE_SIZE = 1024;
const tableKeys = new Int32Array(TABLE_SIZE);
const tableRules: Rule[][] = [];
/** 1 when the slot's word heads a censored JSON key (`"password":`), see `KEY_HEADS`. */
const tableKeyHead = new Uint8Array(TABLE_SIZE);
function slotOf(h: number): number {
  let slot = h & (TABLE_SIZE - 1);
  while (tableKeys[slot] !== 0 && tableKeys[slot] !== h + 1) slot = (slot + 1) & (TABLE_SIZE - 1);
  tableKeys[slot] = h + 1;
  tableRules[slot] ??= [];
  return slot;
}
function trigger(words: readonly string[], ...rules: Rule[]): void {
  for (const w of words) {
    const list = tableRules[slotOf(wordHash(w))] as Rule[];
    for (const r of rules) if (!list.includes(r)) list.push(r);
  }
}
/** The slot of a head hash, or -1: the only lookup the lexer makes per word. */
function lookup(h: number): number {
  let slot = h & (TABLE_SIZE - 1);
  for (;;) {
    const k = tableKeys[slot];
    if (k === h + 1) return slot;
    if (k === 0) return -1;
    slot = (slot + 1) & (TABLE_SIZE - 1);
  }
}

trigger(['ssn', 'ss', 'social', 'soc'], rule('ssn-context'));
trigger(['phone', 'telephone', 'tel', 'fax', 'cell', 'cellphone', 'mobile', 'ph', 'call', 'contact', 'reach', 'text', 'number'], rule('phone-context'));
trigger(
  ['dob', 'd', 'date', 'birth', 'birthdate', 'born', 'dos', 'service', 'admit', 'admission', 'admitted', 'discharge', 'discharged'],
  rule('date-context'),
);
trigger(['age', 'aged'], rule('age-context'));
trigger(['zip', 'zipcode', 'postal', 'postcode', 'post'], rule('zip-context'));
trigger(['p', 'po', 'post'], R.poBox);
trigger(['mrn', 'medical', 'med', 'medrec', 'mr', 'patient', 'chart', 'emr', 'ehr'], rule('mrn'));
trigger(['account', 'acct', 'billing', 'acc', 'bank', 'routing', 'iban'], rule('account'));
trigger(
  // A phrase's first word triggers it (`prior auth` by `prior`); `id` alone too.
  [...new Set([...ID_KEYWORDS.map((k) => k.split(' ')[0]!), 'id'])],
  rule('id-context'),
  rule('id-context-clause'),
);
trigger(
  [
    'member',
    'subscriber',
    'beneficiary',
    'medicaid',
    'medicare',
    'insurance',
    'hicn',
    'enrollee',
    'policy',
    'plan',
    'health',
    'group',
    'payer',
    'insured',
    'coverage',
  ],
  rule('health-plan'),
);
trigger(['driver', 'drivers', 'license', 'licence', 'lic', 'dl', 'dea', 'certificate', 'cert', 'certification', 'registration', 'permit'], rule('license'));
trigger(['serial', 's', 'imei', 'udi', 'meid', 'sn', 'esn', 'device', 'implant', 'pacemaker', 'equipment'], rule('device'));
trigger(['vin'], rule('vin-context'));
trigger(['it', 'mine'], rule('id-answer'));
trigger(['on', 'at', 'off', 'near', 'along'], rule('street-name'));
trigger(['license', 'licence', 'plate'], rule('plate-context'));
trigger(['http', 'https', 'ftp', 'www'], R.url);
trigger(['phone', 'tel', 'telephone', 'fax', 'email', 'e', 'address', 'dob', 'ssn', 'mrn'], rule('labelled-tag'));
trigger(MONTH_WORDS, R.dateMonthFirst);
trigger(SEASONS, rule('date-season'));
trigger(WEEKDAY_WORDS, R.dateMonthFirst, R.dateDayFirst);

// Heads of the censored JSON keys (`access` of `accessToken`): tried only on a word right after a `"`.
for (const key of REDACT_KEYS) tableKeyHead[slotOf(wordHash((/^[A-Za-z][a-z]*/.exec(key)?.[0] ?? key).toLowerCase()))] = 1;

const STATE_CODES = new Set<number>(STATES.map((s) => charCodeAt.call(s, 0) * 256 + charCodeAt.call(s, 1)));

// Character classes of the lexer, one table load per character.
const OTHER = 0,
  DIGIT = 1,
  UPPER_HEX = 2,
  UPPER = 3,
  LOWER_HEX = 4,
  LOWER = 5;
const CLASS = new Uint8Array(128);
for (let c = 48; c <= 57; c++) CLASS[c] = DIGIT;
for (let c = 65; c <= 90; c++) CLASS[c] = c <= 70 ? UPPER_HEX : UPPER;
for (let c = 97; c <= 122; c++) CLASS[c] = c <= 102 ? LOWER_HEX : LOWER;
const classOf = (c: number): number => (c < 128 ? (CLASS[c] as number) : OTHER);
const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const isUpper = (c: number): boolean => c >= 65 && c <= 90;
/** Characters a URL cannot contain (`[^\s"'<>\\^\`{|}]` in the URL rules). */
const isUrlEnd = (c: number): boolean =>
  (c >= 9 && c <= 13) ||
  c === 32 ||
  c === 34 ||
  c === 39 ||
  c === 60 ||
  c === 62 ||
  c === 92 ||
  c === 94 ||
  c === 96 ||
  c === 123 ||
  c === 124 ||
  c === 125 ||
  c === 0xa0 ||
  c === 0x1680 ||
  (c >= 0x2000 && c <= 0x200a) ||
  c === 0x2028 ||
  c === 0x2029 ||
  c === 0x202f ||
  c === 0x205f ||
  c === 0x3000 ||
  c === 0xfeff;
/** Characters after which a scheme-less URL may start (the lookbehind of `url-path`). */
const isUrlStartAfter = (c: number): boolean => isUrlEnd(c) || c === 40 || c === 41 || c === 44 || c === 59 || c === 61;
const isLocalPart = (c: number): boolean => classOf(c) !== OTHER || c === 46 || c === 95 || c === 37 || c === 43 || c === 45;

const C_STAR = 42,
  C_QUESTION = 63,
  C_QUOTE = 34,
  C_PLUS = 43,
  C_LPAREN = 40,
  C_AT = 64,
  C_COLON = 58,
  C_DASH = 45,
  C_DOT = 46,
  C_SLASH = 47,
  C_SPACE = 32,
  C_TAB = 9;

function tryAt(r: Rule, text: string, pos: number, out: Span[]): void {
  r.sticky.lastIndex = pos;
  const m = r.sticky.exec(text);
  if (m !== null) r.evaluate(m, text, out);
}

/**
 * Finds the pattern layer's spans that start in `[from, to)` (the hot path). Spans are not merged.
 * Throws only on a bug; callers fail closed.
 */
export function scanPatterns(text: string, from = 0, to = text.length, out: Span[] = []): Span[] {
  const n = Math.min(to, text.length);
  let i = from;
  const cls = CLASS;
  while (i < n) {
    const c = charCodeAt.call(text, i);
    // The class table is read inline here and below: this loop runs for every character logged.
    if (c >= 128 || cls[c] === OTHER) {
      if (c === C_AT) {
        let s = i;
        while (s > 0 && i - s <= 64 && isLocalPart(charCodeAt.call(text, s - 1))) s--;
        if (s < i) tryAt(R.email, text, s, out);
      } else if (c === C_PLUS) {
        if (isDigit(charCodeAt.call(text, i + 1))) {
          tryAt(R.phone, text, i, out);
          tryAt(R.phoneIntl, text, i, out);
        }
      } else if (c === C_LPAREN) {
        if (isDigit(charCodeAt.call(text, i + 1))) tryAt(R.phone, text, i, out);
      } else if (c === C_COLON && charCodeAt.call(text, i + 1) === C_COLON) {
        tryAt(R.ipv6, text, i, out);
      } else if (c === C_STAR) {
        if (charCodeAt.call(text, i + 3) === C_STAR) tryAt(R.cardMasked, text, i, out);
      } else if (c === C_SLASH) {
        // A path: a URL without a scheme starts at the first `/` of its run, or at a host right
        // before it. Each start is tried once, at the first slash after it.
        let k = i;
        while (k > 0 && !isUrlEnd(charCodeAt.call(text, k - 1)) && charCodeAt.call(text, k - 1) !== C_SLASH) k--;
        for (let p = k; p <= i; p++) if (p === 0 || isUrlStartAfter(charCodeAt.call(text, p - 1))) tryAt(R.urlPathId, text, p, out);
      } else if (c === C_QUESTION) {
        // A query string: its URL starts somewhere in the run of URL characters before it.
        let s = i;
        while (s > 0 && !isUrlEnd(charCodeAt.call(text, s - 1))) s--;
        for (let p = s; p < i; p++) if (p === 0 || isUrlStartAfter(charCodeAt.call(text, p - 1))) tryAt(R.urlPath, text, p, out);
      }
      i++;
      continue;
    }
    // One word: a maximal run of ASCII letters and digits.
    const start = i;
    let digits = 0;
    let hex = true;
    let head = 0;
    let headOpen = true;
    let prevLower = false;
    const len0 = text.length;
    for (; i < len0; i++) {
      const d = charCodeAt.call(text, i);
      if (d >= 128) break;
      const k = cls[d] as number;
      if (k === OTHER) break;
      if (k === DIGIT) {
        digits++;
        headOpen = false;
        prevLower = false;
      } else if (k <= UPPER) {
        if (prevLower) headOpen = false;
        if (headOpen) head = (Math.imul(head, 31) + d + 32) & 0xfffffff;
        if (k === UPPER) hex = false;
        prevLower = false;
      } else {
        if (headOpen) head = (Math.imul(head, 31) + d) & 0xfffffff;
        if (k === LOWER) hex = false;
        prevLower = true;
      }
    }
    dispatchWord(text, start, i, digits, hex, head, out);
  }
  return out;
}

/** Tries the rules a word can start, by its shape (kept out of the character loop, which stays small). */
function dispatchWord(text: string, start: number, i: number, digits: number, hex: boolean, head: number, out: Span[]): void {
  const len = i - start;
  const next = charCodeAt.call(text, i);
  const first = charCodeAt.call(text, start);
  if (hex && len <= 4 && next === C_COLON) {
    // IPv6 needs a second `:` within five characters, a MAC address the same separator at +5.
    const c2 = text.indexOf(':', i + 1);
    if (c2 >= 0 && c2 <= i + 5) tryAt(R.ipv6, text, start, out);
    if (len === 2 && charCodeAt.call(text, start + 5) === C_COLON) tryAt(R.mac, text, start, out);
  } else if (hex && len === 2 && next === C_DASH && charCodeAt.call(text, start + 5) === C_DASH) {
    tryAt(R.mac, text, start, out);
  }
  if (isDigit(first)) {
    const sep = next === C_DASH || next === C_DOT || next === C_SPACE;
    if (digits === len) {
      if (len === 3) {
        if (next === C_DASH || next === C_SPACE) tryAt(R.ssn, text, start, out);
        if (sep) tryAt(R.phone, text, start, out);
        if ((next === C_DASH || next === C_DOT) && first >= 50) tryAt(R.phoneLocal, text, start, out);
      } else if (len === 1 && first === 49 && (sep || next === C_LPAREN)) {
        tryAt(R.phone, text, start, out);
      } else if ((len === 2 || len === 3) && first === 48 && sep) {
        tryAt(R.phone, text, start, out);
      }
      if (len <= 2 && (next === C_SLASH || next === C_DOT || next === C_DASH)) tryAt(R.dateMdy, text, start, out);
      if (len <= 2 && next === C_SLASH) tryAt(R.dateMonthDay, text, start, out);
      if (len === 10 && first >= 50) tryAt(R.phoneBare, text, start, out);
      if (len <= 3 && next === C_DOT) tryAt(R.ipv4, text, start, out);
      if (len === 4) {
        if (next === C_SLASH || next === C_DOT || next === C_DASH) tryAt(R.dateYmd, text, start, out);
        if (next === C_SPACE || next === C_DASH) tryAt(R.card, text, start, out);
        if (first === 49 && sep) tryAt(R.phone, text, start, out);
      }
      if (len === 5 && next === C_DASH) tryAt(R.zip4, text, start, out);
      if (len === 10 && (first === 49 || first === 50)) tryAt(R.npi, text, start, out);
      if (len >= 13 && len <= 19) tryAt(R.card, text, start, out);
    } else {
      if (len === 9 && isDigit(charCodeAt.call(text, start + 1))) tryAt(R.dateCompactMonth, text, start, out);
      if (first !== 48 && (len === 11 || (len === 4 && next === C_DASH)) && !isDigit(charCodeAt.call(text, start + 1))) tryAt(R.mbi, text, start, out);
      if (len === 17) tryAt(R.vin, text, start, out);
      if (len <= 4 && digits <= 2) tryAt(R.dateOrdinal, text, start, out);
    }
    if (len <= 7 && (next === C_SPACE || next === C_TAB || next === C_DASH)) {
      tryAt(R.address, text, start, out);
      if (len <= 4) tryAt(R.dateDayFirst, text, start, out);
    }
    // Ages over 89: `9d` or `10d`/`11d` at the start of the word.
    const second = charCodeAt.call(text, start + 1);
    if ((first === 57 && isDigit(second)) || (first === 49 && (second === 48 || second === 49) && isDigit(charCodeAt.call(text, start + 2)))) {
      tryAt(R.ageSuffix, text, start, out);
    }
  } else {
    const slot = lookup(head);
    if (slot >= 0) {
      for (const r of tableRules[slot] as Rule[]) tryAt(r, text, start, out);
      if (tableKeyHead[slot] === 1 && start > 0 && charCodeAt.call(text, start - 1) === C_QUOTE) tryAt(R.jsonKey, text, start - 1, out);
    }
    if (len === 2 && isUpper(first) && STATE_CODES.has(first * 256 + charCodeAt.call(text, start + 1))) tryAt(R.zipState, text, start, out);
    if (len === 9 && isUpper(first)) tryAt(R.dea, text, start, out);
    if (len === 17 && digits > 0) tryAt(R.vin, text, start, out);
  }
}

/**
 * The reference: every rule tried at every position of the text. Slow; the tests compare it with
 * `scanPatterns` to prove the prefilter misses nothing.
 */
export function scanPatternsExhaustive(text: string, out: Span[] = []): Span[] {
  for (const r of RULES) {
    const re = r.global;
    re.lastIndex = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      r.evaluate(m, text, out);
      re.lastIndex = m.index + 1;
    }
  }
  return out;
}
