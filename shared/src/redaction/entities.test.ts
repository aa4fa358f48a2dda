import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { scanEntities, scanEntitiesReference } from './entities';
import { mergeSpans, type Span } from './types';
import { prng } from './corpus/generate';

// Synthetic text only: the names and places below are made up or common words.
const masked = (text: string): string[] => mergeSpans(scanEntities(text)).map((s) => `${s.label}:${text.slice(s.start, s.end)}`);
const key = (spans: Span[]): string => JSON.stringify(mergeSpans(spans));

describe('entity layer: people', () => {
  it.each([
    ['Seen by Dr. Okafor today', 'NAME:Okafor'],
    ['Patient Anna Kowalczyk was discharged', 'NAME:Anna Kowalczyk'],
    ['SMITH, JOHN admitted overnight', 'NAME:SMITH, JOHN'],
    ['Mr. John A. Smith called back', 'NAME:John A. Smith'],
    ['hi sarah, your results are in', 'NAME:sarah'],
    ["Dr. O'Brien-Walsh signed the note", "NAME:O'Brien-Walsh"],
    ['Regards,\nMaribel Quintanilla', 'NAME:Maribel Quintanilla'],
    ['Name: Zorblax Testface', 'NAME:Zorblax Testface'],
  ])('%s', (text, expected) => {
    expect(masked(text)).toContain(expected);
  });

  it('masks a record number set off right after a name, not a year or a count', () => {
    expect(masked('Dylan Testperson, 2694522, is a 9 mo old')).toContain('MRN:2694522');
    expect(masked('Dr. Okafor, 2024, reviewed 12 charts')).toEqual(['NAME:Okafor']);
  });

  it('masks a name again where the text repeats it', () => {
    expect(masked('Dr. Okafor reviewed it; Okafor agreed.')).toEqual(['NAME:Okafor', 'NAME:Okafor']);
  });
});

describe('entity layer: places', () => {
  it.each([
    ['Transferred to Lakeview Regional Hospital at noon', 'LOCATION:Lakeview Regional Hospital'],
    ['Lives in Springfield, IL with family', 'LOCATION:Springfield, IL'],
    ['Moved from Texas last year', 'LOCATION:Texas'],
    ['Agenda\nLocation: Annex Room 4\nAttendees: all', 'LOCATION:Annex Room 4'],
    ['Venue: 12 Wharf Road.', 'LOCATION:12 Wharf Road'],
    ['She lives in Daviston now', 'LOCATION:Daviston'],
    ['Parents are at Angelahaven tonight', 'LOCATION:Angelahaven'],
    ['6 years old from Hillside Elementary, admitted', 'LOCATION:Hillside Elementary'],
    ['we could go hiking at the Blue Ridge Mountains this weekend', 'LOCATION:Blue Ridge Mountains'],
    ['The picnic is at Riverside Park.', 'LOCATION:Riverside Park'],
  ])('%s', (text, expected) => {
    expect(masked(text)).toContain(expected);
  });
});

describe('entity layer: what stays readable', () => {
  it.each([
    ['{"level":30,"msg":"step completed","step":"goto","durationMs":120}'],
    ['{"coverage":"Active","plan":"Demo Gold PPO","status":200}'],
    ['Started metoprolol 25 mg twice daily; BP improved.'],
    ['run_01J100000ABCDEFGHJK finished in 3 attempts'],
    ['The Park was closed; Our Hotel offers breakfast.'],
    ['Location: unknown, retrying'],
  ])('%s', (text) => {
    expect(masked(text)).toEqual([]);
  });
});

describe('the lexer and the gates find exactly what the regular-expression reference finds', () => {
  const corpus = readFileSync(join(__dirname, '../../fixtures/redaction/corpus.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { text: string }).text);
  // Shapes the lexer handles by hand: initials, particles, possessives, hyphens, apostrophes,
  // commas before states, cues across blanks and new lines, greetings after `-` and `'`.
  const hard = [
    'Ludwig van Beethoven and Maria de la Cruz',
    'J. R. Tolkien',
    'Dr.Okafor',
    'Dr.  Okafor',
    "Hughes's chart",
    'Hughes’s chart',
    'Jean-Pierre Moreau',
    'x-hi sarah',
    "don'T",
    '5Texas',
    "'Texas'",
    '_Texas',
    'Austin,TX',
    'Austin,  Texas',
    'Portland, OR 97201',
    'patient , Okafor',
    'patient. Okafor',
    'seen by\tDr Ama Okafor',
    'Contact：Okafor',
    'Best wishes,\r\nAma',
    'Müller, Jürgen',
    'Ólafur from Reykjavík',
    'lives in  Port Thomasborough',
    'city: Daviston',
    'THANKS mike',
    'thank you anna',
    'Hi,  john smith',
    "St. Mary's Clinic",
    'Mount Sinai Hospital-based',
    'Blue Ridge Mountains',
    'the Park',
    'at Riverside Park',
    'from Oak Park Elementary',
    'New York',
    'New  York, NY',
    'District of Columbia',
    'SMITH,JOHN',
    'Smith, John',
    'Okafor.',
    'A.B. Okafor',
    'Dear Parent',
    'Patient Card',
  ];
  const texts = [...corpus, ...hard];

  it('on the corpus and the hard cases', () => {
    for (const text of texts) expect([text, key(scanEntities(text))]).toEqual([text, key(scanEntitiesReference(text))]);
  });

  it('on random splices of them, with separators, case changes and offsets', () => {
    const rnd = prng(11);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
    const glue = [' ', '', '-', '.', ':', '"', '","', '\n', ', ', "'", '  ', '\t', '_', '5', 'é', '’'];
    for (let n = 0; n < 1500; n++) {
      let text = '';
      for (let k = 0; k < 3; k++) {
        const t = pick(texts);
        const a = Math.floor(rnd() * t.length);
        const b = a + Math.floor(rnd() * (t.length - a + 1));
        let part = t.slice(a, b);
        if (rnd() < 0.2) part = part.toLowerCase();
        else if (rnd() < 0.1) part = part.toUpperCase();
        text += part + pick(glue);
      }
      // Also from an offset, as the line redactor scans only the part between cached edges.
      const from = rnd() < 0.3 ? Math.floor(rnd() * text.length) : 0;
      expect([text, from, key(scanEntities(text, from))]).toEqual([text, from, key(scanEntitiesReference(text, from))]);
    }
  });
});

describe('entity layer: countries and cities of the gazetteer', () => {
  it.each([
    ['back from a trip to Italy', 'LOCATION:Italy'],
    ['our Chicago office called', 'LOCATION:Chicago'],
    ['moved to New York in May', 'LOCATION:New York'],
    ['seen at the clinic in Lagos', 'LOCATION:Lagos'],
  ])('%s', (text, expected) => {
    expect(masked(text)).toContain(expected);
  });

  it('leaves places named by ordinary words, and words in capitals, to the cue rules', () => {
    for (const text of ['Reading the file failed', 'Mobile app error', 'The Nice weather', 'Split payment', 'ORDERLY_E_BOT_FAILED in CHICAGO_POOL']) {
      expect(masked(text).filter((m) => m.startsWith('LOCATION'))).toEqual([]);
    }
  });
});
