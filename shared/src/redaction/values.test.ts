import { hasCode } from '../errors';
import { createRedactor } from './redactor';
import { dateFormats, declaredPhiFromInput, MIN_VALUE_LENGTH, parseDateValue } from './values';

// Obviously fake values. The secret holds every character an encoding changes: `/`, `+`, `"`,
// `&`, `<`, `>`, `'`, a space and a non-ASCII letter.
const SECRET = 'Zq9/fake+S3cret "&<it\'s> ünïcode';
const NAME = 'Zorblax Q. McTestface';
const MEMBER_ID = 'ZQX-123-456-789';
const DOB = '1980-01-02';

/** True when every character of `text[start, end)` is inside a span of `label`. */
function covered(text: string, start: number, end: number, secrets: string[], phi: { field: string; value: string }[], label: string): boolean {
  const spans = createRedactor({ secrets, phi, patterns: false }).scan(text);
  for (let k = start; k < end; k++) if (!spans.some((s) => s.start <= k && k < s.end && s.label === label)) return false;
  return true;
}

const strict = (s: string): string => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

// The encodings a value travels in, each applied to the value as a whole.
const ENCODINGS: [string, (v: string) => string][] = [
  ['as declared', (v) => v],
  ['upper case', (v) => v.toUpperCase()],
  ['lower case', (v) => v.toLowerCase()],
  ['URL-encoded (encodeURIComponent)', encodeURIComponent],
  ['URL-encoded with lower-case escapes', (v) => encodeURIComponent(v).replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase())],
  ['form-encoded (spaces as +)', (v) => encodeURIComponent(v).replace(/%20/g, '+')],
  ['URL-encoded per RFC 3986', strict],
  ['encodeURI', encodeURI],
  ['JSON-escaped', (v) => JSON.stringify(v).slice(1, -1)],
  [
    'JSON-escaped with \\u for non-ASCII',
    (v) =>
      JSON.stringify(v)
        .slice(1, -1)
        .replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`),
  ],
  ['JSON-escaped twice', (v) => JSON.stringify(JSON.stringify(v).slice(1, -1)).slice(1, -1)],
  ['HTML-escaped (&#39;)', (v) => v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;')],
  ['HTML-escaped (&#x27;)', (v) => v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#x27;')],
  ['HTML-escaped (&apos;, &#34;)', (v) => v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&#34;').replace(/'/g, '&apos;')],
  ['base64', (v) => Buffer.from(v).toString('base64')],
  ['base64 without padding', (v) => Buffer.from(v).toString('base64').replace(/=+$/, '')],
  ['base64url', (v) => Buffer.from(v).toString('base64url')],
  ['hex', (v) => Buffer.from(v).toString('hex')],
];

const VALUES: { kind: 'secret' | 'phi'; value: string; label: string; skip?: string[] }[] = [
  { kind: 'secret', value: SECRET, label: 'SECRET' },
  { kind: 'secret', value: 'hvs' + '.CAESIFAKEfakeFAKEtoken0123', label: 'SECRET' },
  // Hex is registered for secrets only.
  { kind: 'phi', value: NAME, label: 'PHI', skip: ['hex'] },
  { kind: 'phi', value: MEMBER_ID, label: 'PHI', skip: ['hex'] },
  { kind: 'phi', value: DOB, label: 'PHI', skip: ['hex'] },
  { kind: 'phi', value: 'Zoë Ñandú-Fakerson', label: 'PHI', skip: ['hex'] },
];

describe('declared values: every encoding is masked entirely', () => {
  const cases = VALUES.flatMap(({ kind, value, label, skip }) =>
    ENCODINGS.filter(([name]) => !(skip ?? []).includes(name)).map(([name, encode]) => [kind, value, name, encode, label] as const),
  );
  it.each(cases)('%s %j, %s', (kind, value, _name, encode, label) => {
    const encoded = encode(value);
    const text = `before ${encoded} after`;
    const secrets = kind === 'secret' ? [value] : [];
    const phi = kind === 'phi' ? [{ field: 'field', value }] : [];
    expect(covered(text, 7, 7 + encoded.length, secrets, phi, label)).toBe(true);
    expect(createRedactor({ secrets, phi }).redact(text)).not.toContain(encoded);
  });
});

describe('base64 inside a longer blob, at each byte alignment', () => {
  // The characters that depend only on the value's bytes; computed here independently of values.ts.
  const core = (prefix: string, value: string, suffix: string): { blob: string; start: number; end: number } => {
    const pre = Buffer.byteLength(prefix);
    const blob = Buffer.from(prefix + value + suffix).toString('base64');
    const start = Math.ceil((pre * 8) / 6);
    const end = Math.floor(((pre + Buffer.byteLength(value)) * 8) / 6);
    return { blob, start, end };
  };
  const cases = ['', 'a', 'ab', 'abc', 'user:', 'Basic x'].flatMap((prefix) =>
    [SECRET, 'hvs' + '.CAESIFAKEfakeFAKEtoken0123'].map((v) => [prefix, v] as const),
  );
  it.each(cases)('prefix %j before secret %j', (prefix, value) => {
    const { blob, start, end } = core(prefix, value, '","ok":true}');
    expect(end - start).toBeGreaterThan(4);
    expect(covered(blob, start, end, [value], [], 'SECRET')).toBe(true);
  });
  it('a declared PHI value in a base64 cookie', () => {
    const { blob, start, end } = core('{"user":"', NAME, '"}');
    expect(covered(`session=${blob}`, 8 + start, 8 + end, [], [{ field: 'name', value: NAME }], 'PHI')).toBe(true);
  });
});

describe('multi-line secrets', () => {
  const pem = '-----BEGIN FAKE KEY-----\nMC4CAQAwBQYDK2VwBCIEIFAKEFAKEFAKEFAKE\nFAKEFAKEFAKEFAKEFAKEFAKEfake0123\n-----END FAKE KEY-----';
  it.each(pem.split('\n'))('line %j is masked when it is logged on its own', (line) => {
    const text = `key part: ${line}.`;
    expect(covered(text, 10, 10 + line.length, [pem], [], 'SECRET')).toBe(true);
  });
  it('the whole secret with CRLF line ends and JSON-escaped', () => {
    const crlf = pem.replace(/\n/g, '\r\n');
    const escaped = JSON.stringify(crlf).slice(1, -1);
    expect(covered(`x ${crlf} y`, 2, 2 + crlf.length, [crlf], [], 'SECRET')).toBe(true);
    expect(covered(`x ${escaped} y`, 2, 2 + escaped.length, [crlf], [], 'SECRET')).toBe(true);
  });
});

describe('names', () => {
  const phi = [{ field: 'name', value: NAME }];
  it.each([
    ['last name first', 'McTestface, Zorblax Q.'],
    ['last, first without the initial', 'McTestface, Zorblax'],
    ['first and last only', 'Zorblax McTestface'],
    ['upper case', 'ZORBLAX Q. MCTESTFACE'],
    ['double spaces and a line break', 'Zorblax  Q.\nMcTestface'],
    ['HL7 order', 'McTestface^Zorblax^Q.'],
    ['first name alone', 'Zorblax'],
    ['last name alone', 'MCTESTFACE'],
  ])('%s: %j', (_case, variant) => {
    expect(covered(`[${variant}]`, 1, 1 + variant.length, [], phi, 'PHI')).toBe(true);
  });
  it('a name part inside a longer word is left alone', () => {
    expect(createRedactor({ phi, patterns: false }).scan('the Zorblaxian empire')).toEqual([]);
  });
});

describe('dates of birth', () => {
  const phi = [{ field: 'dob', value: DOB }];
  it.each(dateFormats({ y: 1980, m: 1, d: 2 }))('%j', (format) => {
    expect(covered(`DOB ${format}.`, 4, 4 + format.length, [], phi, 'PHI')).toBe(true);
    const url = encodeURIComponent(format);
    expect(covered(`dob=${url}&x`, 4, 4 + url.length, [], phi, 'PHI')).toBe(true);
  });
  it.each(['01/02/1980', '1/2/1980', 'January 2, 1980', '2 Jan 1980', '19800102', '1980/01/02'])('is read from %j', (declared) => {
    expect(parseDateValue(declared)).toEqual({ y: 1980, m: 1, d: 2 });
  });
  it('another date is not masked, nor a longer number that contains the date', () => {
    const r = createRedactor({ phi, patterns: false });
    expect(r.scan('1980-01-03 and 01/02/19801 and 11/2/1980')).toEqual([]);
  });
});

describe('ids with or without separators', () => {
  it.each(['ZQX123456789', 'zqx 123 456 789', 'ZQX.123.456.789', 'ZQX/123456/789', 'ZQX - 123 - 456 - 789', 'ZQX_123_456_789'])('%j', (variant) => {
    expect(covered(`id ${variant};`, 3, 3 + variant.length, [], [{ field: 'memberId', value: MEMBER_ID }], 'PHI')).toBe(true);
  });
  it.each(['123456789', '123 45 6789', '123.45.6789'])('an SSN declared as 123-45-6789, written %j', (variant) => {
    expect(covered(`ssn ${variant}!`, 4, 4 + variant.length, [], [{ field: 'ssn', value: '123-45-6789' }], 'PHI')).toBe(true);
  });
  it('a phone number declared with parentheses', () => {
    for (const v of ['212-555-0199', '2125550199', '212.555.0199']) {
      expect(covered(`tel ${v}`, 4, 4 + v.length, [], [{ field: 'phone', value: '(212) 555-0199' }], 'PHI')).toBe(true);
    }
  });
});

describe('values too short to mask', () => {
  it('refuses a short secret without quoting it', () => {
    let caught: unknown;
    try {
      createRedactor({ secrets: ['fake-secret-1', 'x9z'] });
    } catch (err) {
      caught = err;
    }
    expect(hasCode(caught, 'ORDERLY_E_REDACTION_VALUE_TOO_SHORT')).toBe(true);
    expect((caught as Error).message).toMatch(/secret #2/);
    expect((caught as Error).message).not.toContain('x9z');
    expect(JSON.stringify((caught as { details: unknown }).details)).not.toContain('x9z');
  });
  it('refuses a short PHI value and names the field, not the value', () => {
    let caught: unknown;
    try {
      createRedactor({ phi: [{ field: 'middleInitial', value: 'Q' }] });
    } catch (err) {
      caught = err;
    }
    expect(hasCode(caught, 'ORDERLY_E_REDACTION_VALUE_TOO_SHORT')).toBe(true);
    expect((caught as Error).message).toContain('middleInitial');
    expect((caught as { details: Record<string, unknown> }).details).toEqual({ field: 'middleInitial', length: 1, minimum: MIN_VALUE_LENGTH });
  });
  it('counts characters after trimming, and accepts the minimum length', () => {
    expect(() => createRedactor({ phi: [{ field: 'f', value: '  abc  ' }] })).toThrow(/shorter than 4/);
    expect(() => createRedactor({ phi: [{ field: 'f', value: 'abcd' }] })).not.toThrow();
  });
  it('skips empty optional fields: they have nothing to leak', () => {
    expect(
      createRedactor({
        phi: [
          { field: 'f', value: '' },
          { field: 'g', value: '   ' },
        ],
        secrets: [''],
      }).scan('anything'),
    ).toEqual([]);
  });
});

describe('declaredPhiFromInput', () => {
  it('flattens the declared fields of an input to strings', () => {
    const input = { name: 'Zorblax McTestface', memberId: 123456789, address: { street: '1 Fake St', zip: '99999' }, tags: ['a1b2c3', null], other: 'not phi' };
    expect(declaredPhiFromInput(['name', 'memberId', 'address', 'tags', 'missing'], input)).toEqual([
      { field: 'name', value: 'Zorblax McTestface' },
      { field: 'memberId', value: '123456789' },
      { field: 'address.street', value: '1 Fake St' },
      { field: 'address.zip', value: '99999' },
      { field: 'tags[0]', value: 'a1b2c3' },
    ]);
  });
});
