import { BotManifest, PackageDigest } from '@orderly/shared';
import type { StoredPackage } from './packages';
import { diffLines, permissionDiff } from './permission-diff';

/** Only what the manifest says matters to the diff; the rest of a stored package is filler. */
function pkg(version: string, digest: string, m: { credentials?: string[]; hosts?: string[]; phi?: string[]; segments?: string[] }): StoredPackage {
  const manifest = { name: 'eligibility-check', version, credentials: [], hosts: [], phi: [], segments: ['demo'], ...m } as unknown as BotManifest;
  return { manifest, view: { name: 'eligibility-check', version, digest: `sha256:${digest.repeat(64)}` as PackageDigest } } as unknown as StoredPackage;
}

const prod = pkg('1.0.0', 'a', { credentials: ['portal_user'], hosts: ['portal.example'], phi: ['memberId'], segments: ['demo', 'live'] });

test('a version that declares no more than prod does not widen; one that adds anything does, listing only the additions', () => {
  expect(permissionDiff(pkg('1.0.1', 'b', { credentials: ['portal_user'], segments: ['live'] }), prod)).toMatchObject({
    widens: false,
    against: { version: '1.0.0' },
  });
  const wider = permissionDiff(
    pkg('1.1.0', 'c', {
      credentials: ['portal_user', 'db_password'],
      hosts: ['portal.example', 'evil.example'],
      phi: ['memberId', 'ssn'],
      segments: ['demo', 'other'],
    }),
    prod,
  );
  expect(wider).toMatchObject({ widens: true, added: { credentials: ['db_password'], hosts: ['evil.example'], phi: ['ssn'], segments: ['other'] } });
  expect(diffLines(wider)).toEqual(
    expect.arrayContaining(['  + credentials: db_password', '  + hosts: evil.example', '  + PHI fields: ssn', '  + segments: other']),
  );
});

test('each of the four lists widens on its own', () => {
  for (const added of [{ credentials: ['x_token'] }, { hosts: ['x.example'] }, { phi: ['dateOfBirth'] }, { segments: ['other'] }]) {
    expect(permissionDiff(pkg('2.0.0', 'd', { ...added }), undefined).widens).toBe(true);
  }
});

test('with nothing in prod, everything a version declares is added', () => {
  const first = permissionDiff(prod, undefined);
  expect(first).toMatchObject({
    against: null,
    widens: true,
    added: { credentials: ['portal_user'], hosts: ['portal.example'], phi: ['memberId'], segments: ['demo', 'live'] },
  });
});

test('the diff digest binds the candidate, the version compared with and the additions', () => {
  const candidate = pkg('1.1.0', 'c', { credentials: ['db_password'] });
  const digest = permissionDiff(candidate, prod).diffDigest;
  expect(permissionDiff(candidate, prod).diffDigest).toBe(digest);
  expect(permissionDiff(pkg('1.1.0', 'e', { credentials: ['db_password'] }), prod).diffDigest).not.toBe(digest);
  expect(permissionDiff(candidate, pkg('1.0.0', 'f', { ...prod.manifest })).diffDigest).not.toBe(digest);
  expect(permissionDiff(candidate, undefined).diffDigest).not.toBe(digest);
});
