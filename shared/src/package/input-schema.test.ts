import { isOrderlyError, OrderlyError } from '../errors';
import { InputSchema, validateInput } from './input-schema';

const schema = InputSchema.parse({
  type: 'object',
  properties: {
    memberId: { type: 'string', pattern: '^ZZ[0-9]{6}$' },
    dateOfBirth: { type: 'string', format: 'date' },
    email: { type: 'string', format: 'email' },
    plan: { type: 'string', enum: ['gold', 'silver'] },
    note: { type: 'string', minLength: 2, maxLength: 10 },
    visits: { type: 'integer', minimum: 0, maximum: 99 },
    copay: { type: 'number' },
    urgent: { type: 'boolean' },
  },
  required: ['memberId', 'dateOfBirth'],
});

const valid = { memberId: 'ZZ123456', dateOfBirth: '1901-02-03' };

function refusal(input: unknown): OrderlyError {
  try {
    validateInput(schema, input);
  } catch (err) {
    if (isOrderlyError(err)) return err;
    throw err;
  }
  throw new Error('expected validateInput to throw');
}

/** Everything an error could leak through: message, details, wire form and stack. */
function everythingSaid(err: OrderlyError): string {
  return [err.message, JSON.stringify(err.details), JSON.stringify(err.toJSON()), err.stack ?? ''].join('\n');
}

describe('InputSchema', () => {
  it('defaults required to none and additionalProperties to false', () => {
    const parsed = InputSchema.parse({ type: 'object', properties: { a: { type: 'boolean' } } });
    expect(parsed.required).toEqual([]);
    expect(parsed.additionalProperties).toBe(false);
  });

  it.each([
    ['a nested object field', { type: 'object', properties: { a: { type: 'object' } } }],
    ['a field name with a dash', { type: 'object', properties: { 'member-id': { type: 'string' } } }],
    ['a field name starting with an underscore', { type: 'object', properties: { __proto__x: { type: 'string' } } }],
    ['an invalid pattern', { type: 'object', properties: { a: { type: 'string', pattern: '(' } } }],
    ['an undeclared required field', { type: 'object', properties: {}, required: ['a'] }],
  ])('refuses %s', (_what, value) => {
    expect(InputSchema.safeParse(value).success).toBe(false);
  });
});

describe('validateInput', () => {
  it('accepts valid input and returns it', () => {
    const full = { ...valid, email: 'nobody@example.test', plan: 'gold', note: 'hi', visits: 3, copay: 12.5, urgent: false };
    expect(validateInput(schema, valid)).toEqual(valid);
    expect(validateInput(schema, full)).toEqual(full);
  });

  it.each([
    ['an extra field', { ...valid, ssn: '000-00-0000' }],
    ['a missing required field', { memberId: 'ZZ123456' }],
    ['a number where a string is declared', { ...valid, memberId: 123456 }],
    ['a string where an integer is declared', { ...valid, visits: '3' }],
    ['a fraction where an integer is declared', { ...valid, visits: 2.5 }],
    ['a string where a boolean is declared', { ...valid, urgent: 'yes' }],
    ['a value under the minimum', { ...valid, visits: -1 }],
    ['a value over the maximum', { ...valid, visits: 100 }],
    ['a string over maxLength', { ...valid, note: 'much too long a note' }],
    ['a string under minLength', { ...valid, note: 'x' }],
    ['a pattern mismatch', { ...valid, memberId: 'AB123456' }],
    ['a pattern mismatch by a trailing newline', { ...valid, memberId: 'ZZ123456\n' }],
    ['an impossible date', { ...valid, dateOfBirth: '1901-02-30' }],
    ['a date in another format', { ...valid, dateOfBirth: '02/03/1901' }],
    ['a bad email', { ...valid, email: 'not-an-email' }],
    ['a value outside the enum', { ...valid, plan: 'platinum' }],
    ['null', null],
    ['an array', [valid]],
    ['a string', 'ZZ123456'],
  ])('refuses %s with ORDERLY_E_INPUT_INVALID', (_what, input) => {
    expect(refusal(input).code).toBe('ORDERLY_E_INPUT_INVALID');
  });

  it('names the failing fields', () => {
    const err = refusal({ memberId: 'AB123456', dateOfBirth: '1901-13-01' });
    expect(err.message).toContain('memberId');
    expect(err.message).toContain('dateOfBirth');
    expect(err.details.problems).toHaveLength(2);
  });

  describe('never echoes the input values (they are PHI)', () => {
    // Synthetic, obviously fake values that are distinctive enough to spot anywhere.
    const fakeMember = 'FAKEPHI-MEMBER-7731';
    const fakeDob = '1888-99-77';
    const fakeSsn = 'FAKEPHI-SSN-000-00-0000';
    const fakeNote = 'FAKEPHI-NOTE-Jane-Fakename';

    it.each([
      ['a pattern mismatch and a bad date', { memberId: fakeMember, dateOfBirth: fakeDob }, [fakeMember, fakeDob]],
      ['an extra field', { ...valid, extra: fakeSsn }, [fakeSsn]],
      ['a too-long string', { ...valid, note: fakeNote }, [fakeNote]],
      ['a value outside the enum', { ...valid, plan: fakeNote }, [fakeNote]],
      ['a wrong type', { ...valid, urgent: fakeNote, visits: fakeMember }, [fakeNote, fakeMember]],
      ['a bad email', { ...valid, email: fakeMember }, [fakeMember]],
      ['a string instead of an object', fakeMember, [fakeMember]],
    ])('%s', (_what, input, secrets) => {
      const said = everythingSaid(refusal(input));
      for (const secret of secrets) expect(said).not.toContain(secret);
    });
  });
});

describe('input patterns run in linear time (re2js), never on RegExp', () => {
  const withPattern = (pattern: string) => InputSchema.parse({ type: 'object', properties: { a: { type: 'string', pattern } }, required: ['a'] });

  it.each([
    ['a backreference', '^(a+)+\\1$'],
    ['a lookahead', '^(?=a)a+$'],
    ['a negative lookbehind', '(?<!x)a'],
    ['a repeat count over 1000', 'a{1001}'],
    ['nested repeats over 1000', '((a{100}){100})'],
  ])('refuses %s in the schema', (_what, pattern) => {
    const parsed = InputSchema.safeParse({ type: 'object', properties: { a: { type: 'string', pattern } } });
    expect(parsed.success).toBe(false);
  });

  it('accepts ECMA-262 spellings RE2 spells otherwise', () => {
    const schema = withPattern('^[\\u0041-\\u005A]{3}(?<digits>[0-9]{2})$');
    expect(validateInput(schema, { a: 'ZZT12' })).toEqual({ a: 'ZZT12' });
    expect(() => validateInput(schema, { a: 'zzt12' })).toThrow(expect.objectContaining({ code: 'ORDERLY_E_INPUT_INVALID' }));
  });

  it('matches unanchored, like JSON Schema', () => {
    const schema = withPattern('[0-9]');
    expect(validateInput(schema, { a: 'abc1def' })).toEqual({ a: 'abc1def' });
    expect(() => validateInput(schema, { a: 'abcdef' })).toThrow(expect.objectContaining({ code: 'ORDERLY_E_INPUT_INVALID' }));
  });

  it('checks a catastrophic-for-backtracking pattern in linear time', () => {
    // With RegExp, `^(a|a)*$` against 30 a's and a b takes minutes (2^30 paths); RE2 has no paths to try.
    const schema = withPattern('^(a|a)*$');
    const hostile = `${'a'.repeat(100_000)}b`;
    const started = process.hrtime.bigint();
    expect(() => validateInput(schema, { a: hostile })).toThrow(expect.objectContaining({ code: 'ORDERLY_E_INPUT_INVALID' }));
    expect(validateInput(schema, { a: 'a'.repeat(100_000) }).a).toHaveLength(100_000);
    const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
    expect(elapsedMs).toBeLessThan(2000);
  });

  it('refuses to validate against a stored pattern RE2 cannot compile, with its code', () => {
    // A manifest stored before patterns were checked at publish: never falls back to RegExp.
    const legacy = {
      type: 'object',
      properties: { a: { type: 'string', pattern: '^(a+)+\\1$' } },
      required: ['a'],
      additionalProperties: false,
    } as unknown as InputSchema;
    expect(() => validateInput(legacy, { a: 'aa' })).toThrow(expect.objectContaining({ code: 'ORDERLY_E_INPUT_PATTERN_UNSUPPORTED' }));
  });
});
