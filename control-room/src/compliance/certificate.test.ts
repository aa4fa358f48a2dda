import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHECKS } from './checks';
import { ComplianceFacts, readCertificateNotAfter } from './facts';

/** The certificate-expiry check on real certificates (openssl), one about to expire and one renewed. */
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'orderly-cert-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function certificate(name: string, days: number): string {
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      `${name}.key`,
      '-out',
      `${name}.crt`,
      '-days',
      String(days),
      '-subj',
      '/CN=fake.orderly.invalid',
    ],
    { cwd: dir, stdio: 'ignore' },
  );
  return join(dir, `${name}.crt`);
}

const expiry = CHECKS.find((c) => c.id === 'transmission.certificate-expiry')!;
const judge = (certFile: string) => {
  const now = new Date();
  const facts = {
    now,
    settings: { tls: { certFile } },
    policy: { certificateMinDays: 14 },
    certificateNotAfter: readCertificateNotAfter(certFile),
  } as unknown as ComplianceFacts;
  return expiry.evaluate(facts).result;
};

test('a certificate expiring within 14 days fails; a renewed one passes; an unreadable one fails', () => {
  expect(judge(certificate('expiring', 3))).toBe('fail');
  expect(judge(certificate('renewed', 60))).toBe('pass');
  const garbage = join(dir, 'garbage.crt');
  writeFileSync(garbage, 'not a certificate');
  expect(judge(garbage)).toBe('fail');
});
