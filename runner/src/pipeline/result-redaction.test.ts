import { resultLeavingRun } from './result-redaction';

const SECRET = 'fake-portal-password-000-ZZ';

test('a leased secret in a result is masked, encoded too, and the run is flagged', () => {
  const warnings: string[] = [];
  const out = resultLeavingRun(
    { coverage: 'Active', echoed: `password was ${SECRET}`, nested: [{ b64: Buffer.from(SECRET).toString('base64') }] },
    { portal_password: SECRET },
    (m) => warnings.push(m),
  );
  expect(out.flags).toEqual(['secret_in_result']);
  const text = JSON.stringify(out.result);
  expect(text).not.toContain(SECRET);
  expect(text).not.toContain(Buffer.from(SECRET).toString('base64'));
  expect((out.result as { coverage: string }).coverage).toBe('Active');
  expect(warnings).toHaveLength(1);
  expect(warnings.join('')).not.toContain(SECRET);
});

test('a result without secrets, or a run without a lease, leaves unchanged and unflagged (PHI in a result is its purpose)', () => {
  const result = { coverage: 'Active', memberName: 'Zed Testperson', phone: '555-0100' };
  expect(resultLeavingRun(result, { portal_password: SECRET }, () => undefined)).toEqual({ result });
  expect(resultLeavingRun(result, undefined, () => undefined)).toEqual({ result });
});

test('a result too deep to check is dropped and flagged (fail closed)', () => {
  let deep: unknown = SECRET;
  for (let i = 0; i < 100; i++) deep = { d: deep };
  expect(resultLeavingRun(deep, { portal_password: SECRET }, () => undefined)).toEqual({ result: null, flags: ['secret_in_result'] });
});
