import { OrderlyError } from '../errors';
import { redactError, redactErrorBody, REDACTION_FAILED, type RedactedError } from './errors';
import { createRedactor } from './redactor';

const SECRET = 'hvs.FAKEtokenFAKE0123';
const NAME = 'Zorblax McTestface';
const redactor = createRedactor({ secrets: [SECRET], phi: [{ field: 'name', value: NAME }] });
const all = (e: RedactedError): string => JSON.stringify(e);

describe('redactError', () => {
  it('redacts the message and the stack', () => {
    const out = redactError(new Error(`portal rejected ${NAME} (SSN 123-45-6789) with token ${SECRET}`), redactor);
    expect(out.message).toBe('portal rejected [PHI] (SSN [SSN]) with token [SECRET]');
    expect(out.stack).toMatch(/^Error: portal rejected \[PHI\] \(SSN \[SSN\]\) with token \[SECRET\]\n\s+at /);
    expect(all(out)).not.toMatch(/Zorblax|123-45-6789|FAKEtoken/);
  });

  it('follows `cause` chains and AggregateError lists, and stops at cycles', () => {
    const root = new Error(`row for ${NAME}`);
    const middle = new Error('lookup failed', { cause: root });
    const top = new AggregateError([new Error('MRN: 00123456 missing'), 'plain string 212-555-0101'], 'several failures', { cause: middle });
    (root as { cause?: unknown }).cause = top;
    const out = redactError(top, redactor);
    expect(out.cause?.message).toBe('lookup failed');
    expect(out.cause?.cause?.message).toBe('row for [PHI]');
    expect(out.cause?.cause?.cause).toBeUndefined();
    expect(out.errors?.map((e) => e.message)).toEqual(['MRN: [MRN] missing', 'plain string [PHONE]']);
    expect(all(out)).not.toMatch(/Zorblax|00123456|212-555-0101/);
  });

  it('redacts the details and code of an OrderlyError', () => {
    const err = new OrderlyError('ORDERLY_E_BOT_BUSINESS', 'member not found', { member: 'Member ID: ZQX123456789', names: [NAME], count: 2 });
    const out = redactError(err, redactor);
    expect(out.code).toBe('ORDERLY_E_BOT_BUSINESS');
    expect(out.details).toEqual({ member: 'Member ID: [HEALTH_PLAN]', names: ['[PHI]'], count: 2 });
  });

  it('handles thrown values that are not errors', () => {
    expect(redactError(`${NAME} failed`, redactor)).toEqual({ name: 'NonError', message: '[PHI] failed' });
    expect(redactError({ ssn: '123-45-6789' }, redactor).message).not.toContain('123-45-6789');
  });

  it('fails closed: a part that cannot be redacted becomes a constant', () => {
    const broken = {
      redact: (): string => {
        throw new Error('redactor bug');
      },
    };
    const out = redactError(new Error(`secret ${SECRET}`, { cause: new Error(NAME) }), broken);
    expect(out.message).toBe(REDACTION_FAILED);
    expect(out.stack).toBe(REDACTION_FAILED);
    expect(out.cause?.message).toBe(REDACTION_FAILED);
    expect(all(out)).not.toMatch(/Zorblax|FAKEtoken/);
  });
});

describe('redactErrorBody', () => {
  it('redacts the message and the details of the wire form', () => {
    const body = new OrderlyError('ORDERLY_E_INPUT_INVALID', `dob 01/02/1980 for ${NAME} is invalid`, { field: 'dob', value: '01/02/1980' }).toJSON();
    expect(redactErrorBody(body, redactor)).toEqual({
      code: 'ORDERLY_E_INPUT_INVALID',
      message: 'dob [DATE] for [PHI] is invalid',
      retryable: false,
      details: { field: 'dob', value: '[DATE]' },
    });
  });
});
