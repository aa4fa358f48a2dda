import { createRedactor } from './redactor';
import { FILE_NAME_MAX, REDACTED_FILE_NAME, redactedFileName } from './file-names';

const MEMBER = 'ZZT900800777';
const r = createRedactor({ phi: [{ field: 'memberId', value: MEMBER }], secrets: ['fake-secret-value-42'] });

describe('redactedFileName', () => {
  it('masks a declared value used as a name, then keeps to the safe charset', () => {
    expect(redactedFileName(r, MEMBER)).toBe('PHI');
    expect(redactedFileName(r, `member-${MEMBER}`)).toBe('member-_PHI');
    expect(redactedFileName(r, `member ${MEMBER}.png`)).toBe('member_PHI_.png');
    expect(redactedFileName(r, 'key fake-secret-value-42')).not.toContain('fake-secret');
  });

  it('masks undeclared shapes too', () => {
    const name = redactedFileName(r, 'ssn 123-45-6789');
    expect(name).not.toContain('6789');
    expect(name).toMatch(/^[A-Za-z0-9._-]{1,64}$/);
  });

  it('leaves plain names alone and always returns a valid name', () => {
    expect(redactedFileName(r, 'form')).toBe('form');
    expect(redactedFileName(r, 'step-2.after_submit')).toBe('step-2.after_submit');
    for (const name of ['', '../../etc/passwd', '....', '[]', 'é'.repeat(10), 'a'.repeat(200), '\u0000x']) {
      expect(redactedFileName(r, name)).toMatch(/^[A-Za-z0-9._-]{1,64}$/);
      expect(redactedFileName(r, name).length).toBeLessThanOrEqual(FILE_NAME_MAX);
    }
    expect(redactedFileName(r, '../../etc/passwd')).toBe('etc_passwd');
  });

  it('fails closed when redaction fails', () => {
    const failing = {
      redact: () => {
        throw new Error('detector bug');
      },
    };
    expect(redactedFileName(failing, MEMBER)).toBe(REDACTED_FILE_NAME);
  });
});
