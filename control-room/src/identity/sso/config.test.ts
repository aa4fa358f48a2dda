import { ControlRoomConfigSchema } from '../../config';
import { hasSecondFactor, needsSecondFactor, rolesForGroups } from './sso';

const BASE = { ORDERLY_SEGMENTS: 'demo,dev' };
const SSO = {
  ORDERLY_OIDC_ISSUER: 'https://id.example.test/realms/orderly',
  ORDERLY_OIDC_CLIENT_ID: 'orderly',
  ORDERLY_OIDC_REDIRECT_URL: 'https://orderly.example.test/v1/auth/sso/callback',
  ORDERLY_OIDC_GROUP_ROLES: JSON.stringify({ ops: ['operator@dev'], sec: ['security'], audit: ['auditor'] }),
};
const parse = (env: Record<string, string>) => ControlRoomConfigSchema.safeParse({ ...BASE, ...env });
const issues = (env: Record<string, string>) => {
  const result = parse(env);
  return result.success ? [] : result.error.issues.map((i) => String(i.path[0]));
};

test('single sign-on is off unless configured, and then needs all of issuer, client, redirect and mapping', () => {
  expect(parse({}).data?.sso).toBeUndefined();
  const { ORDERLY_OIDC_REDIRECT_URL: _, ...noRedirect } = SSO;
  expect(issues(noRedirect)).toEqual(['ORDERLY_OIDC_REDIRECT_URL']);
  expect(issues({ ORDERLY_OIDC_CLIENT_ID: 'orderly' })).toEqual(
    expect.arrayContaining(['ORDERLY_OIDC_ISSUER', 'ORDERLY_OIDC_REDIRECT_URL', 'ORDERLY_OIDC_GROUP_ROLES']),
  );
  const sso = parse(SSO).data!.sso!;
  expect(sso).toMatchObject({
    issuer: SSO.ORDERLY_OIDC_ISSUER,
    clientId: 'orderly',
    groupsClaim: 'groups',
    mfaAmr: ['mfa', 'otp', 'hwk'],
    allowInsecureIssuer: false,
  });
  expect(sso.clientSecretFile).toMatch(/secrets\/oidc-client\.secret$/);
  expect(sso.groupRoles).toEqual({ ops: ['operator@dev'], sec: ['security'], audit: ['auditor'] });
});

test('the group mapping is refused when it is not JSON, maps to admin or to an unknown segment', () => {
  expect(issues({ ...SSO, ORDERLY_OIDC_GROUP_ROLES: '{not json' })).toEqual(['ORDERLY_OIDC_GROUP_ROLES']);
  expect(issues({ ...SSO, ORDERLY_OIDC_GROUP_ROLES: JSON.stringify({ root: ['admin'] }) })).toEqual(['ORDERLY_OIDC_GROUP_ROLES']);
  expect(issues({ ...SSO, ORDERLY_OIDC_GROUP_ROLES: JSON.stringify({ ops: ['operator@prod'] }) })).toEqual(['ORDERLY_OIDC_GROUP_ROLES']);
  expect(issues({ ...SSO, ORDERLY_OIDC_GROUP_ROLES: JSON.stringify({ ops: [] }) })).toEqual(['ORDERLY_OIDC_GROUP_ROLES']);
});

test('an http issuer is allowed only on loopback outside production', () => {
  expect(parse({ ...SSO, ORDERLY_OIDC_ISSUER: 'http://127.0.0.1:9000' }).data?.sso?.allowInsecureIssuer).toBe(true);
  expect(issues({ ...SSO, ORDERLY_OIDC_ISSUER: 'http://id.example.test' })).toEqual(['ORDERLY_OIDC_ISSUER']);
  expect(issues({ ...SSO, ORDERLY_OIDC_ISSUER: 'http://127.0.0.1:9000', ORDERLY_ENV: 'production', ORDERLY_TLS_TERMINATED: 'true' })).toEqual([
    'ORDERLY_OIDC_ISSUER',
  ]);
});

test('security and approver always need a second factor, whatever ORDERLY_OIDC_MFA_ROLES says', () => {
  const sso = parse({ ...SSO, ORDERLY_OIDC_MFA_ROLES: 'auditor' }).data!.sso!;
  expect([...sso.mfaRoles].sort()).toEqual(['admin', 'approver', 'auditor', 'security']);
  expect(needsSecondFactor(['operator@dev'], sso.mfaRoles)).toBe(false);
  expect(needsSecondFactor(['operator@dev', 'security'], sso.mfaRoles)).toBe(true);
  expect(needsSecondFactor(['auditor'], sso.mfaRoles)).toBe(true);
  expect(issues({ ...SSO, ORDERLY_OIDC_MFA_ROLES: 'superuser' })).toEqual(['ORDERLY_OIDC_MFA_ROLES']);
  // By default every role needs one.
  expect(needsSecondFactor(['developer'], parse(SSO).data!.sso!.mfaRoles)).toBe(true);
});

test('groups map to the union of their bindings; unknown groups and prototype keys grant nothing', () => {
  const mapping = { ops: ['operator@dev'], audit: ['auditor', 'operator@dev'] };
  expect(rolesForGroups(['audit', 'ops', 'marketing'], mapping)).toEqual(['auditor', 'operator@dev']);
  expect(rolesForGroups(['constructor', '__proto__', 'toString'], mapping)).toEqual([]);
  expect(rolesForGroups([], mapping)).toEqual([]);
});

test('amr counts as a second factor only with an accepted value', () => {
  expect(hasSecondFactor(['pwd', 'otp'], ['mfa', 'otp'])).toBe(true);
  expect(hasSecondFactor(['pwd'], ['mfa', 'otp'])).toBe(false);
  expect(hasSecondFactor('mfa', ['mfa'])).toBe(false); // amr is an array
  expect(hasSecondFactor(undefined, ['mfa'])).toBe(false);
});
