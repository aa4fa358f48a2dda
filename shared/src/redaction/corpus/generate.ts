import { writeFileSync } from 'node:fs';
import { luhnCheckDigit, vinCheckChar } from '../checksums';

/**
 * The synthetic redaction corpus: log lines, portal errors and note fragments with every
 * shaped PHI label in the forms they are written in, plus clean lines full of look-alikes
 * (order numbers, times, versions, prices, ids with a wrong check digit) that must stay.
 *
 * Everything is fake and looks it: names such as "Zorblax McTestface", streets such as
 * "Placeholder Ave", example.com addresses, 555-01xx phone numbers, documentation IP ranges,
 * the payment networks' published test card numbers; SSNs, NPIs, MBIs and VINs are drawn
 * from a seeded generator. The same seed always gives the same corpus.
 *
 * Regenerate the committed file after changing this generator:
 *   npx tsc -b shared && node shared/dist/redaction/corpus/generate.js shared/fixtures/redaction/corpus.jsonl
 * (a test fails while the committed file and the generator disagree).
 */

export interface CorpusSpan {
  start: number;
  end: number;
  label: string;
}
export interface CorpusLine {
  text: string;
  spans: CorpusSpan[];
  declared?: string[];
}

export const DEFAULT_SEED = 20240611;

/** mulberry32: small, fast, and the same on every platform (also seeds the redaction fuzz tests). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Part = string | readonly [label: string, value: string];

/** Builds one line from text and labelled values, recording where each value landed. */
function line(parts: readonly Part[], declared?: string[]): CorpusLine {
  let text = '';
  const spans: CorpusSpan[] = [];
  for (const part of parts) {
    if (typeof part === 'string') {
      text += part;
    } else {
      spans.push({ start: text.length, end: text.length + part[1].length, label: part[0] });
      text += part[1];
    }
  }
  return declared ? { text, spans, declared } : { text, spans };
}

const FIRST = ['Zorblax', 'Testy', 'Fakey', 'Sampla', 'Mocky', 'Dummo', 'Placeholda', 'Quuxley', 'Foobert', 'Nullina', 'Examplia', 'Stubby'] as const;
const LAST = ['McTestface', 'Fakerson', 'Examplar', 'Placeholder', 'Dummyson', 'Sampleton', 'Fooington', 'Nonexisto', 'Mockworth', 'Stubbins'] as const;
const STREETS = [
  'Example',
  'Placeholder',
  'Sample',
  'Fictional',
  'Testing Ridge',
  'Imaginary Oak',
  'Dummy Creek',
  'N Fakeview',
  'Old Mock Mill',
  '5th',
  '42nd',
] as const;
const SUFFIXES = [
  'Street',
  'St',
  'St.',
  'Avenue',
  'Ave',
  'Road',
  'Rd.',
  'Boulevard',
  'Blvd',
  'Lane',
  'Ln',
  'Drive',
  'Dr',
  'Court',
  'Way',
  'Place',
  'Terrace',
  'Parkway',
  'Circle',
] as const;
const CITIES = ['Testville', 'Sampletown', 'Fakesburg', 'Exampleton', 'Mock City', 'Placeholder Falls', 'Nulltown'] as const;
const STATES = ['IL', 'CA', 'NY', 'TX', 'OH', 'WA', 'GA', 'MA', 'FL', 'AZ', 'PA', 'MN'] as const;
const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'] as const;
const MBI_LETTERS = 'ACDEFGHJKMNPQRTUVWXY';
const VIN_CHARS = 'ABCDEFGHJKLMNPRSTUVWXYZ0123456789';
// Published test card numbers of the payment networks: they never belong to anyone.
const TEST_CARDS = [
  '4111111111111111',
  '4242424242424242',
  '4012888888881881',
  '5555555555554444',
  '5105105105105100',
  '378282246310005',
  '371449635398431',
  '6011111111111117',
  '6011000990139424',
  '3530111333300000',
  '30569309025904',
] as const;

/** Generates the corpus; `seed` picks the values, the templates are fixed. */
export function generateCorpus(seed: number = DEFAULT_SEED): CorpusLine[] {
  const rnd = prng(seed);
  const int = (lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  const digits = (n: number): string => Array.from({ length: n }, () => String(int(0, 9))).join('');
  const pad = (n: number, w: number): string => String(n).padStart(w, '0');
  const hex = (n: number): string => Array.from({ length: n }, () => '0123456789abcdef'[int(0, 15)]).join('');
  const upperHex = (n: number): string => hex(n).toUpperCase();
  const letters = (n: number, from = 'ABCDEFGHJKLMNPQRSTUVWXYZ'): string => Array.from({ length: n }, () => pick([...from])).join('');
  const first = (): string => pick(FIRST);
  const last = (): string => pick(LAST);
  const uuid = (): string => `${hex(8)}-${hex(4)}-4${hex(3)}-${pick(['8', '9', 'a', 'b'])}${hex(3)}-${hex(12)}`;

  // --- values ---
  const ssnParts = (): [string, string, string] => {
    let area = int(1, 899);
    if (area === 666) area = 667;
    return [pad(area, 3), pad(int(1, 99), 2), pad(int(1, 9999), 4)];
  };
  const ssn = (): string => ssnParts().join(pick(['-', '-', '-', ' ']));
  const areaCode = (): string => `${int(2, 9)}${int(0, 8)}${int(0, 9)}`;
  const fictional = (): string => `555-01${pad(int(0, 99), 2)}`;
  const phone = (): string => {
    const a = areaCode();
    const line4 = `01${pad(int(0, 99), 2)}`;
    return pick([
      `(${a}) 555-${line4}`,
      `${a}-555-${line4}`,
      `${a}.555.${line4}`,
      `+1 ${a} 555 ${line4}`,
      `1-${a}-555-${line4}`,
      `(${a})555-${line4}`,
      `${a}-555-${line4} x${int(10, 9999)}`,
      `+44 20 7946 0${pad(int(0, 999), 3)}`,
    ]);
  };
  const date = (): { y: number; m: number; d: number } => ({ y: int(1930, 2016), m: int(1, 12), d: int(1, 28) });
  const dateText = (): string => {
    const { y, m, d } = date();
    const month = MONTHS[m - 1] as string;
    const mon = month.slice(0, 3);
    return pick([
      `${pad(m, 2)}/${pad(d, 2)}/${y}`,
      `${m}/${d}/${y}`,
      `${y}-${pad(m, 2)}-${pad(d, 2)}`,
      `${y}-${pad(m, 2)}-${pad(d, 2)}T${pad(int(0, 23), 2)}:${pad(int(0, 59), 2)}:00Z`,
      `${month} ${d}, ${y}`,
      `${mon} ${d} ${y}`,
      `${mon}. ${d}, ${y}`,
      `${d} ${month} ${y}`,
      `${pad(d, 2)}-${mon.toUpperCase()}-${y}`,
      `${pad(m, 2)}/${pad(d, 2)}/${pad(y % 100, 2)}`,
      `${pad(d, 2)}.${pad(m, 2)}.${y}`,
      `${month} ${y}`,
      `${mon} ${d}`,
      `${month} ${d}th`,
      `${pad(d, 2)}${mon.toUpperCase()}${y}`,
      `${y}/${pad(m, 2)}/${pad(d, 2)}`,
    ]);
  };
  const mbi = (): string => {
    const L = (): string => pick([...MBI_LETTERS]);
    const A = (): string => pick([...MBI_LETTERS, ...'0123456789']);
    const D = (): string => String(int(0, 9));
    const parts = [`${int(1, 9)}${L()}${A()}${D()}`, `${L()}${A()}${D()}`, `${L()}${L()}${D()}${D()}`];
    return parts.join(pick(['', '-']));
  };
  const npi = (): string => {
    const base = `${pick(['1', '2'])}${digits(8)}`;
    return base + luhnCheckDigit('80840' + base);
  };
  const badNpi = (): string => {
    const good = npi();
    return good.slice(0, 9) + String((Number(good[9]) + int(1, 9)) % 10);
  };
  const card = (): string => {
    const n = pick(TEST_CARDS);
    const sep = pick([' ', '-', '']);
    if (n.length === 15) return [n.slice(0, 4), n.slice(4, 10), n.slice(10)].join(sep);
    if (n.length === 14) return [n.slice(0, 4), n.slice(4, 10), n.slice(10)].join(sep);
    return (n.match(/.{4}/g) ?? []).join(sep);
  };
  const vin = (valid = true): string => {
    for (;;) {
      const chars = Array.from({ length: 17 }, () => pick([...VIN_CHARS]));
      chars[8] = '0';
      const v = chars.join('');
      const check = vinCheckChar(v) as string;
      const wanted = valid ? check : check === '1' ? '2' : '1';
      const out = v.slice(0, 8) + wanted + v.slice(9);
      if ((out.match(/[A-Z]/g) ?? []).length >= 2 && (out.match(/\d/g) ?? []).length >= 3) return out;
    }
  };
  const dea = (valid = true): string => {
    const d = Array.from({ length: 6 }, () => int(0, 9));
    const check = ((d[0] as number) + (d[2] as number) + (d[4] as number) + 2 * ((d[1] as number) + (d[3] as number) + (d[5] as number))) % 10;
    return `${pick([...'ABFGM'])}${pick([...'ABCDEFGHKLMPRSTW'])}${d.join('')}${valid ? check : (check + 1) % 10}`;
  };
  const imei = (): string => {
    const base = `35${digits(12)}`;
    return base + luhnCheckDigit(base);
  };
  const zip = (): string => pad(int(1001, 99950), 5);
  const email = (): string =>
    `${first().toLowerCase()}.${last().toLowerCase()}${pick(['', String(int(1, 99)), '+portal'])}@${pick(['example.com', 'example.org', 'mail.example.net', 'payer.test'])}`;
  const ipv4 = (): string => `${pick(['192.0.2', '198.51.100', '203.0.113'])}.${int(1, 254)}`;
  const ipv6 = (): string =>
    pick([
      `2001:db8::${hex(4).replace(/^0+/, '') || '1'}`,
      `2001:db8:${hex(4).replace(/^0+/, '') || 'a'}::${int(1, 99)}`,
      `2001:db8:85a3::8a2e:${hex(3)}:${hex(4)}`,
    ]);
  const mac = (): string => {
    const sep = pick([':', '-']);
    return ['02', upperHex(2), upperHex(2), upperHex(2), upperHex(2), upperHex(2)].join(sep);
  };
  const idDigits = (n: number): string => `${int(1, 9)}${digits(n - 1)}`;
  const street = (): string => `${int(1, 9999)} ${pick(STREETS)} ${pick(SUFFIXES)}`;

  const out: CorpusLine[] = [];
  const repeat = (n: number, make: () => CorpusLine): void => {
    for (let i = 0; i < n; i++) out.push(make());
  };
  const N = 16;

  // --- SSN ---
  repeat(N, () =>
    pick<() => CorpusLine>([
      () => line(['Verified SSN ', ['SSN', ssn()], ' against the enrollment file']),
      () => line(['portal error: subscriber ssn=', ['SSN', ssn()], ' not found']),
      () => line(['Social Security Number: ', ['SSN', ssn()]]),
      () => line(['{"field":"ssn","value":"', ['SSN', ssn()], '"} rejected by payer']),
      () => line(['SSN: ', ['SSN', ssnParts().join('')], ' (no dashes) submitted']),
      () => line(['social security no. ', ['SSN', ssnParts().join('')], ' on file']),
      () => line(['Pt SSN ', ['SSN', ssn()], ', callback ', ['PHONE', phone()]]),
      () => line(['SS# ', ['SSN', ssn()], ' copied from the intake form']),
      () => line(['{"ssn":', ['SSN', ssnParts().join('')], '}']),
    ])(),
  );

  // --- phone and fax ---
  repeat(N, () =>
    pick<() => CorpusLine>([
      () => line(['Call member back at ', ['PHONE', phone()], ' after 3 pm']),
      () => line(['phone: ', ['PHONE', phone()]]),
      () => line(['Provider office ', ['PHONE', phone()], ' confirmed the appointment']),
      () => line(['{"contact":{"mobile":"', ['PHONE', phone()], '"}}']),
      () => line(['Tel. ', ['PHONE', `${areaCode()}555${`01${pad(int(0, 99), 2)}`}`], ' (no separators)']),
      () => line(['cell ', ['PHONE', phone()], ', home ', ['PHONE', phone()]]),
      () => line(['dial ', ['PHONE', `+1${areaCode()}555${`01${pad(int(0, 99), 2)}`}`], ' (E.164)']),
      () => line(['<a href="tel:', ['PHONE', `+1-${areaCode()}-555-01${pad(int(0, 99), 2)}`], '">call</a>']),
      () => line(['reached voicemail at ', ['PHONE', `${areaCode()} 555 01${pad(int(0, 99), 2)}`]]),
    ])(),
  );
  repeat(10, () =>
    pick<() => CorpusLine>([
      () => line(['Fax records to ', ['FAX', `(${areaCode()}) ${fictional()}`]]),
      () => line(['fax: ', ['FAX', `${areaCode()}-${fictional()}`], ' (attn: billing)']),
      () => line(['Prior auth faxed to ', ['FAX', `${areaCode()}.555.01${pad(int(0, 99), 2)}`], ' at 14:05']),
      () => line(['Phone ', ['PHONE', phone()], ', fax ', ['FAX', `${areaCode()}-${fictional()}`]]),
    ])(),
  );

  // --- email ---
  repeat(N, () =>
    pick<() => CorpusLine>([
      () => line(['Sent EOB to ', ['EMAIL', email()]]),
      () => line(['login failed for user ', ['EMAIL', email()], ': invalid password']),
      () => line(['{"username":"', ['EMAIL', email()], '","attempt":2}']),
      () => line(['<', ['EMAIL', email()], '> bounced (mailbox full)']),
      () => line(['mailto:', ['EMAIL', email().toUpperCase()]]),
    ])(),
  );

  // --- dates and ages ---
  repeat(20, () =>
    pick<() => CorpusLine>([
      () => line(['DOB ', ['DATE', dateText()], ' does not match payer record']),
      () => line(['Date of service: ', ['DATE', dateText()]]),
      () => line(['admitted ', ['DATE', dateText()], ', discharged ', ['DATE', dateText()]]),
      () => line(['{"dob":"', ['DATE', dateText()], '","plan":"gold"}']),
      () => line(['Patient born ', ['DATE', dateText()], ' presented with cough']),
      () =>
        line([
          'dob: ',
          [
            'DATE',
            (() => {
              const { y, m, d } = date();
              return `${y}${pad(m, 2)}${pad(d, 2)}`;
            })(),
          ],
        ]),
      () => line(['follow-up scheduled for ', ['DATE', dateText()]]),
      () => {
        const { y, m, d } = date();
        const mon = (MONTHS[m - 1] as string).slice(0, 3);
        return line([
          'seen on ',
          [
            'DATE',
            pick([
              `Sept. ${d}, ${y}`,
              `${d}th ${MONTHS[m - 1]} ${y}`,
              `${mon}-${pad(d, 2)}-${y}`,
              `${m}/${d}/${pad(y % 100, 2)}`,
              `${y}-${pad(m, 2)}-${pad(d, 2)}T08:15:00-05:00`,
            ]),
          ],
          ' by PCP',
        ]);
      },
      () =>
        line([
          'visit ',
          [
            'DATE',
            (() => {
              const { y, m, d } = date();
              return `${y}-${pad(m, 2)}-${pad(d, 2)}`;
            })(),
          ],
          ' 10:30:00 rescheduled',
        ]),
    ])(),
  );
  repeat(12, () =>
    pick<() => CorpusLine>([
      () => line(['Pt is a ', ['AGE', String(int(90, 109))], '-year-old with CHF']),
      () => line(['age: ', ['AGE', String(int(90, 115))]]),
      () => line(['member aged ', ['AGE', String(int(90, 104))], ', eligible for benefit']),
      () => line([['AGE', String(int(90, 104))], ' y/o F, ambulatory']),
      () => line(['patient is ', ['AGE', String(int(90, 104))], ' years old']),
      () => line(['Age ', ['AGE', String(int(90, 104))], ' exceeds the form limit']),
    ])(),
  );

  // --- geography ---
  repeat(N, () =>
    pick<() => CorpusLine>([
      () => line(['Mailing address: ', ['ADDRESS', street()], ', ', pick(STATES), ' ', ['ZIP', zip()]]),
      () =>
        line([
          'lives at ',
          ['ADDRESS', `${street()}, ${pick(['Apt', 'Suite', 'Unit'])} ${int(1, 40)}${pick(['', 'B'])}, ${pick(CITIES)}`],
          ', ',
          pick(STATES),
          ' ',
          ['ZIP', zip()],
        ]),
      () => line(['Return mail from ', ['ADDRESS', `${street()}, ${pick(CITIES)}`], ', ', pick(STATES), ' ', ['ZIP', `${zip()}-${pad(int(1, 9999), 4)}`]]),
      () => line(['Send to ', ['ADDRESS', `P.O. Box ${int(1, 99999)}`], ', ', pick(CITIES), ', ', pick(STATES), ' ', ['ZIP', zip()]]),
      () => line(['{"street":"', ['ADDRESS', street()], '","zip":"', ['ZIP', zip()], '"}']),
      () => line(['address updated to ', ['ADDRESS', `${int(1, 999)} ${pick(STREETS).toUpperCase()} ${pick(['ST', 'AVE', 'RD', 'BLVD'])}`]]),
      () => line(['ZIP code ', ['ZIP', zip()], ' outside service area']),
      () => line(['postal code: ', ['ZIP', `${zip()}-${pad(int(1, 9999), 4)}`]]),
      () =>
        line([
          'ship to ',
          ['ADDRESS', `${int(100, 9999)} ${pick(STREETS)} ${pick(['Ave', 'St', 'Blvd'])} ${pick(['NW', 'NE', 'SW', 'SE', 'N', 'S'])}`],
          ', ',
          pick(STATES),
          ' ',
          ['ZIP', zip()],
        ]),
      () => line(['moved to ', ['ADDRESS', `${street()} Apt. ${int(1, 30)}${pick(['A', 'B', 'C'])}`], ' last month']),
      () => line(['home: ', ['ADDRESS', `${street()} #${int(1, 300)}`]]),
    ])(),
  );

  // --- identifiers found by keyword ---
  repeat(N, () =>
    pick<() => CorpusLine>([
      () => line(['MRN: ', ['MRN', pad(int(1, 99999999), 8)]]),
      () => line(['medical record number ', ['MRN', `${letters(1)}${idDigits(7)}`], ' merged']),
      () => line(['MR# ', ['MRN', idDigits(7)], ' not found in EHR']),
      () => line(['{"mrn":"', ['MRN', `MR-${idDigits(4)}-${digits(4)}`], '"}']),
      () => line(['Patient ID: ', ['MRN', `P${idDigits(8)}`]]),
      () => line(['chart no. ', ['MRN', idDigits(6)], ' closed']),
      () => line(['MRN#', ['MRN', pad(int(1, 99999999), 8)], ' flagged for merge']),
    ])(),
  );
  repeat(N, () =>
    pick<() => CorpusLine>([
      () => line(['account number ', ['ACCOUNT', idDigits(12)], ' past due']),
      () => line(['Acct# ', ['ACCOUNT', idDigits(10)]]),
      () => line(['billing account ', ['ACCOUNT', `BA-${idDigits(8)}`], ' updated']),
      () => line(['{"accountNumber":"', ['ACCOUNT', idDigits(10)], '"}']),
      () => line(['Account: ', ['ACCOUNT', `${letters(2)}${idDigits(9)}`], ' closed by payer']),
    ])(),
  );
  repeat(N, () =>
    pick<() => CorpusLine>([
      () => line(['claim number ', ['ID', `CLM-${idDigits(8)}`], ' denied']),
      () => line(['Transaction ID: ', ['ID', `TXN${idDigits(7)}`]]),
      () => line(['case no. ', ['ID', `${int(2019, 2025)}-CV-${digits(4)}`], ' scheduled']),
      () => line(['student ID is ', ['ID', idDigits(6)], ' on file']),
      () => line(['invoice #', ['ID', idDigits(5)], ' paid']),
    ])(),
  );
  repeat(N, () =>
    pick<() => CorpusLine>([
      () => line(['Member ID: ', ['HEALTH_PLAN', `${letters(3)}${idDigits(9)}`]]),
      () => line(['subscriber id ', ['HEALTH_PLAN', `${letters(1)}${idDigits(9)}`], ' inactive']),
      () => line(['policy number ', ['HEALTH_PLAN', `PLCY-${idDigits(8)}`], ' termed']),
      () => line(['group # ', ['HEALTH_PLAN', `GRP-${idDigits(6)}`]]),
      () => line(['Medicaid ID ', ['HEALTH_PLAN', `${idDigits(8)}${letters(2)}`], ' verified']),
      () => line(['{"memberId":"', ['HEALTH_PLAN', `${letters(3)}${idDigits(9)}`], '","status":"active"}']),
      () => line(['health plan id: ', ['HEALTH_PLAN', `HP${idDigits(10)}`]]),
    ])(),
  );
  repeat(N, () =>
    pick<() => CorpusLine>([
      () => line(['MBI ', ['MBI', mbi()], ' eligible for Part B']),
      () => line(['Medicare beneficiary identifier: ', ['MBI', mbi()]]),
      () => line(['{"mbi":"', ['MBI', mbi()], '"}']),
      () => line(['eligibility response for ', ['MBI', mbi()], ': active']),
    ])(),
  );
  repeat(N, () =>
    pick<() => CorpusLine>([
      () => line(['rendering NPI ', ['NPI', npi()]]),
      () => line(['Provider ', ['NPI', npi()], ' is not in network']),
      () => line(['{"npi":"', ['NPI', npi()], '","taxonomy":"207Q00000X"}']),
      () => line(['billing provider npi=', ['NPI', npi()], '&claim=pending']),
    ])(),
  );
  repeat(N, () =>
    pick<() => CorpusLine>([
      () => line(['card ', ['CARD', card()], ' declined']),
      () => line(['copay charged to ', ['CARD', card()], ' exp 12/29']),
      () => line(['{"pan":"', ['CARD', card()], '"}']),
      () => line(['Payment method: ', ['CARD', card()]]),
    ])(),
  );
  repeat(N, () =>
    pick<() => CorpusLine>([
      () => line(["driver's license ", ['LICENSE', `${letters(1)}${idDigits(3)}-${digits(4)}-${digits(4)}`], ' scanned']),
      () => line(['DL# ', ['LICENSE', `${letters(1)}${idDigits(8)}`]]),
      () => line(['license number ', ['LICENSE', `LIC-${idDigits(8)}`], ' expired']),
      () => line(['prescriber DEA ', ['LICENSE', dea()], ' verified']),
      () => line(['certificate no. ', ['LICENSE', `CERT-${int(1990, 2024)}-${idDigits(6)}`]]),
      () => line(['DEA number: ', ['LICENSE', dea()]]),
    ])(),
  );
  repeat(N, () =>
    pick<() => CorpusLine>([
      () => line(['VIN ', ['VEHICLE', vin()], ' (accident claim)']),
      () => line(['vehicle ', ['VEHICLE', vin()], ' towed']),
      () => line(['license plate ', ['VEHICLE', `${int(1, 9)}${letters(3)}${digits(3)}`], ' recorded by ER']),
      () => line(['plate: ', ['VEHICLE', `${letters(3)} ${digits(4)}`]]),
      () => line(['{"vin":"', ['VEHICLE', vin()], '"}']),
    ])(),
  );
  repeat(N, () =>
    pick<() => CorpusLine>([
      () => line(['pacemaker serial number ', ['DEVICE', `PM${idDigits(8)}`], ' registered']),
      () => line(['S/N: ', ['DEVICE', `${idDigits(4)}-${digits(5)}-${digits(2)}`]]),
      () => line(['device id ', ['DEVICE', `DEV-${idDigits(4)}-${digits(4)}`], ' paired']),
      () => line(['IMEI ', ['DEVICE', imei()], ' of the glucose monitor']),
      () => line(['insulin pump MAC ', ['DEVICE', mac()], ' connected']),
      () => line(['UDI ', ['DEVICE', `(01)${digits(14)}(17)${digits(6)}(10)${letters(1)}${digits(6)}`], ' logged']),
    ])(),
  );

  // --- URLs and IPs ---
  repeat(N, () =>
    pick<() => CorpusLine>([
      () =>
        line([
          'GET ',
          ['URL', `https://portal.example.com/eligibility?memberId=${letters(3)}${idDigits(9)}&dob=${date().y}-0${int(1, 9)}-1${int(0, 9)}`],
          ' -> 500',
        ]),
      () => line(['navigated to ', ['URL', `http://payer.example.org/claims/status?claim=CLM${idDigits(8)}&page=2`]]),
      () => line(['redirect ', ['URL', `https://sso.example.net/login?return_to=%2Fmembers%2F${idDigits(8)}`], '.']),
      () => line(['link: ', ['URL', `www.example.com/search?q=${first().toLowerCase()}+${last().toLowerCase()}`]]),
      () => line(['POST ', ['URL', `https://api.example.org:8443/v2/claims?member=${idDigits(9)}#summary`], ' timed out']),
      () => line(['GET ', ['URL', `/api/v1/eligibility?memberId=${letters(3)}${idDigits(9)}&plan=gold`], ' 200 in ', String(int(5, 900)), ' ms']),
      () => line(['open ', ['URL', `portal.example.net/find-a-doctor?zip=${zip()}&radius=${int(5, 50)}`], ' in a new tab']),
    ])(),
  );
  repeat(N, () =>
    pick<() => CorpusLine>([
      () => line(['request from ', ['IP', ipv4()], ' rejected by allow-list']),
      () => line(['client_ip=', ['IP', ipv4()], ' user-agent=curl/8.5']),
      () => line(['connected to ', ['IP', ipv6()], ' port 443']),
      () => line(['{"remoteAddress":"', ['IP', ipv4()], '","remotePort":51234}']),
      () => line(['home router ', ['IP', ipv6()]]),
      () => line(['VPN peer ', ['IP', `10.${int(0, 255)}.${int(0, 255)}.${int(1, 254)}`], ' dropped']),
      () => line(['src=', ['IP', `2001:0db8:0000:0000:0000:ff00:${pad(int(0, 9999), 4)}:${hex(4)}`]]),
    ])(),
  );

  // --- several labels in one line ---
  repeat(12, () =>
    pick<() => CorpusLine>([
      () => line(['eligibility: member id ', ['HEALTH_PLAN', `${letters(3)}${idDigits(9)}`], ', dob ', ['DATE', dateText()], ', phone ', ['PHONE', phone()]]),
      () => line(['claim denied: NPI ', ['NPI', npi()], ', MRN ', ['MRN', idDigits(8)], ', DOS ', ['DATE', dateText()]]),
      () => line(['{"ssn":"', ['SSN', ssn()], '","email":"', ['EMAIL', email()], '","ip":"', ['IP', ipv4()], '"}']),
      () => line(['mail to ', ['ADDRESS', street()], ', ', pick(STATES), ' ', ['ZIP', zip()], ' or ', ['EMAIL', email()]]),
      () => line(['Pt ', ['AGE', String(int(90, 99))], ' yo, MBI ', ['MBI', mbi()], ', card ', ['CARD', card()]]),
    ])(),
  );

  // --- clean lines: look-alikes that must not be masked ---
  const badSsn = (): string =>
    pick([
      `000-${pad(int(1, 99), 2)}-${pad(int(1, 9999), 4)}`,
      `666-${pad(int(1, 99), 2)}-${pad(int(1, 9999), 4)}`,
      `9${pad(int(0, 99), 2)}-${pad(int(1, 99), 2)}-${pad(int(1, 9999), 4)}`,
      `${pad(int(1, 899), 3)}-00-${pad(int(1, 9999), 4)}`,
      `${pad(int(1, 665), 3)}-${pad(int(1, 99), 2)}-0000`,
    ]);
  const badCard = (): string => {
    const n = pick(TEST_CARDS.filter((c) => c.length === 16));
    return n.slice(0, 15) + String((Number(n[15]) + int(1, 9)) % 10);
  };
  const clean: (() => string)[] = [
    () => `run ${uuid()} finished in ${int(200, 90000)} ms (attempt ${int(1, 3)} of 3)`,
    () => `order ORD-${int(2019, 2025)}-${digits(6)} total $${int(1, 9)},${digits(3)}.${digits(2)}`,
    () => `step "search" took ${int(100, 9999)} ms at ${pad(int(0, 23), 2)}:${pad(int(0, 59), 2)}:${pad(int(0, 59), 2)}.${digits(3)}`,
    () => `chromium ${int(120, 140)}.0.${int(6000, 7000)}.${int(10, 200)} launched with --no-sandbox`,
    () => `package sha256:${hex(64)} verified`,
    () => `upgraded orderly from v${int(1, 3)}.${int(0, 20)}.${int(0, 9)} to v${int(1, 3)}.${int(0, 20)}.${int(0, 9)}`,
    () => `retry ${int(1, 4)}/5 after ${int(100, 900)}ms backoff`,
    () => `rejected look-alike ${badSsn()}: not an issued SSN range`,
    () => `reference number ${badNpi()} failed the check digit`,
    () => `test value ${badCard()} is not a valid card (bad Luhn)`,
    () => `vehicle code ${vin(false)} has a wrong check digit`,
    () => `code ${dea(false)} is not a DEA number`,
    () => `batch ${idDigits(9)} queued with ${int(2, 50)} jobs`,
    () => `HTTP ${pick(['200', '302', '404', '500'])} for /api/runs/${uuid()} in ${int(1, 400)}.${digits(2)} ms`,
    () => `postgres listening on port ${pick(['5432', '6379', '8200', '3000'])}, pid ${int(1000, 99999)}`,
    () => `opened https://portal.example.com/${pick(['login', 'claims/status', 'eligibility', 'members/search'])}`,
    () => `price $${int(10, 999)}.${digits(2)} incl. tax ${int(1, 9)}.${int(10, 99)}%`,
    () => `member count ${int(2, 999)}, account locked after ${int(3, 9)} attempts`,
    () => `Q${int(1, 4)} ${int(2019, 2025)} report generated; page ${int(1, 9)}/${int(10, 20)}`,
    () => `job ${letters(2)}${digits(2)}${hex(20).toUpperCase()} acknowledged`,
    () => `ULID 01${letters(24, '0123456789ABCDEFGHJKMNPQRSTVWXYZ')} assigned`,
    () => `Timeout ${int(5, 60)}000ms exceeded waiting for selector "#member-search"`,
    () => `temperature 98.${int(0, 9)} F, BP ${int(100, 140)}/${int(60, 90)}, pulse ${int(55, 99)}`,
    () => `the plan covers ${int(2, 12)} visits; group sessions ${int(1, 6)} per week`,
    () => `processed ${int(2, 90)} Items Successfully in ${int(2, 59)} Minutes`,
    () => `node v20.${int(0, 19)}.${int(0, 9)}, npm ${int(9, 11)}.${int(0, 9)}.${int(0, 9)}, typescript 5.9.${int(0, 3)}`,
    () => `coordinates x=${int(1, 99)}.${int(1, 9)} y=${int(1, 99)}.${int(1, 9)}; ratio ${int(1, 3)}/${int(4, 9)}`,
    () => `MBI-like ${int(1, 9)}SL${int(0, 9)}-OI${int(0, 9)}-BZ${digits(2)} uses letters CMS never issues`,
    () => `sleeping ${int(1, 30)}s before next poll (${int(10, 99)}% of budget used)`,
    () => `commit ${hex(40)} deployed to segment east`,
    () => `see section ${int(1, 9)}.${int(1, 9)}.${int(1, 9)} of the payer guide; release ${int(10, 28)}.${pad(int(1, 12), 2)}.${pad(int(1, 28), 2)} notes`,
    () =>
      `invoice INV-${int(2019, 2025)}-${pad(int(1, 9999), 4)} sent; call center hours 8-5, meeting at ${int(1, 12)}:${pad(int(0, 59), 2)} AM on floor ${int(2, 9)}`,
    () => `at Object.<anonymous> (/app/dist/main.js:${int(1, 999)}:${int(1, 99)}) after ${int(2, 9)} retries`,
    () => `queue depth ${int(10, 9999)}, p95 ${int(10, 999)} ms, ${int(1, 99)}.${int(0, 9)}% errors, build #${int(100, 9999)}`,
  ];
  for (let i = 0; i < 60; i++) out.push(line([(clean[i % clean.length] as () => string)()]));

  // --- declared values: only the value layer knows these are PHI ---
  const declaredLines: (() => CorpusLine)[] = [
    () => {
      const name = `${first()} ${last()}`;
      return line(['Spoke with ', ['NAME', name], ' about claim status'], [name]);
    },
    () => {
      const [f, l] = [first(), last()];
      return line(['patient: ', ['NAME', `${l}, ${f}`], ' (verified)'], [`${f} ${l}`]);
    },
    () => {
      const name = `${first()} ${last()}`;
      return line(['NAME ON CARD: ', ['NAME', name.toUpperCase()]], [name]);
    },
    () => {
      const [f, l] = [first(), last()];
      return line(['search?q=', ['NAME', encodeURIComponent(`${f} ${l}`)], '&page=1'], [`${f} ${l}`]);
    },
    () => {
      const id = `${letters(3)}${idDigits(7)}`;
      return line(['lookup ', ['MEMBER_ID', id.toLowerCase()], ' returned no rows'], [id]);
    },
    () => {
      const id = `${letters(2)}${idDigits(8)}`;
      return line(['ref ', ['MEMBER_ID', `${id.slice(0, 4)}-${id.slice(4, 7)}-${id.slice(7)}`], ' pending'], [id]);
    },
    () => {
      const [f, l] = [first(), last()];
      const value = `${f} ${l}`;
      const payload = Buffer.from(`{"user":"${value}","ok":true}`, 'utf8');
      const b64 = payload.toString('base64');
      const offset = payload.indexOf(value);
      const start = Math.floor(offset / 3) * 4 + ([0, 2, 3][offset % 3] as number);
      const end = Math.floor(((offset + Buffer.byteLength(value)) * 8) / 6);
      return line(['cookie session=', b64.slice(0, start), ['NAME', b64.slice(start, end)], b64.slice(end)], [value]);
    },
    () => {
      const l = `O'${last()}`;
      const value = `${first()} ${l}`;
      return line(['<td>', ['NAME', value.replace(/'/g, '&#39;')], '</td>'], [value]);
    },
    () => {
      const { y, m, d } = date();
      const value = `${y}-${pad(m, 2)}-${pad(d, 2)}`;
      return line(['dob on form: ', ['DATE', `${MONTHS[m - 1]} ${d}, ${y}`]], [value]);
    },
    () => {
      const [f, l] = [first(), last()];
      return line(['Dear ', ['NAME', f], ', your claim was received'], [`${f} ${l}`]);
    },
  ];
  for (let i = 0; i < 30; i++) out.push((declaredLines[i % declaredLines.length] as () => CorpusLine)());

  return out.filter((l) => l.spans.every((s) => s.end > s.start));
}

/** The corpus as JSONL, one line per entry, with a final newline. */
export function corpusJsonl(lines: readonly CorpusLine[]): string {
  return lines.map((l) => JSON.stringify(l)).join('\n') + '\n';
}

/** `node generate.js FILE` writes the corpus; without FILE it prints it. */
function main(argv: readonly string[]): void {
  const text = corpusJsonl(generateCorpus());
  const file = argv[2];
  if (file) writeFileSync(file, text);
  else process.stdout.write(text);
}

if (require.main === module) main(process.argv);
