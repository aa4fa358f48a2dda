import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import nodeVault from 'node-vault';
import { ClaimResponse, versionRoleName, createLogger, credentialPath, CredentialGrant } from '@orderly/shared';
import { createVaultClientFactory, secretIdCreationPath } from '@orderly/shared/vault';
import { CapturedLog, PORTAL_CREDENTIALS, Stack, startStack } from '../../../test/harness';
import { leaseCredentials } from './lease';

/**
 * The per-run credential lease against the dev Vault over HTTP, with grants issued by a real control
 * room (claim API). node-vault with the root token plays the security team's view of Vault.
 */
let stack: Stack;
let root: ReturnType<typeof nodeVault>;
const factory = () => createVaultClientFactory({ address: stack.vault!.address, defaultBudgetMs: 3000 });
const log = new CapturedLog();
const logger = createLogger({ level: 'debug', name: 'lease-test' }, log);

beforeAll(async () => {
  // Run tokens live 2 s, so a lease must renew to outlive them.
  stack = await startStack({ controlRoomEnv: { ORDERLY_RUN_TOKEN_TTL_SECONDS: '2' } });
  await stack.publish();
  root = nodeVault({ endpoint: stack.vault!.address, token: stack.vault!.rootToken });
});
afterAll(() => stack.close());

async function grant(): Promise<CredentialGrant> {
  const run = await stack.startRun({ bot: 'eligibility-check', input: { portalUrl: stack.portal.url, memberId: 'ZZT100200301', dateOfBirth: '1900-01-15' } });
  const token = readFileSync(join(stack.dataDir, 'secrets', 'runner-demo.token'), 'utf8').trim();
  const claim = await stack.api('POST', `/v1/runner/runs/${run.id}/claim`, { runnerId: 'lease-test' }, token);
  return ClaimResponse.parse(claim.body).credentials!;
}

const lease = (g: CredentialGrant) =>
  leaseCredentials({
    factory: factory(),
    grant: g,
    bot: 'eligibility-check',
    names: ['portal_user', 'portal_password'],
    deadline: Date.now() + 5000,
    log: logger,
  });

const accessorAlive = async (accessor: string) =>
  root.write('auth/token/lookup-accessor', { accessor }).then(
    () => true,
    () => false,
  );

test('a lease reads exactly the declared credentials; release revokes the token', async () => {
  const l = await lease(await grant());
  expect(l.secrets).toEqual({ portal_user: PORTAL_CREDENTIALS.username, portal_password: PORTAL_CREDENTIALS.password });
  expect(await accessorAlive(l.accessor)).toBe(true);
  await l.release();
  expect(await accessorAlive(l.accessor)).toBe(false);
  await l.release(); // idempotent
  expect(log.text()).not.toContain(PORTAL_CREDENTIALS.password);
});

test('a replayed wrapping token is refused as a security event', async () => {
  const g = await grant();
  await (await lease(g)).release();
  await expect(lease(g)).rejects.toMatchObject({ code: 'ORDERLY_E_VAULT_WRAP_INVALID', retryable: false });
  expect(log.text()).toContain('security.wrapping_token_invalid');
  expect(log.text()).not.toContain(g.wrappingToken);
});

test('a SecretID logs in once only', async () => {
  const g = await grant();
  const anonymous = factory().anonymous();
  const { secretId } = await anonymous.unwrapSecretId(g.wrappingToken, secretIdCreationPath(g.roleName));
  const first = await anonymous.approleLogin({ roleId: g.roleId, secretId });
  await expect(anonymous.approleLogin({ roleId: g.roleId, secretId })).rejects.toMatchObject({ code: 'ORDERLY_E_VAULT_PERMISSION_DENIED' });
  await first.client.revokeSelf();
});

test('Vault itself denies a run token anything the manifest does not declare', async () => {
  await root.write(`secret/data/${credentialPath('other-bot', 'password')}`, { data: { value: 'other-bot-secret-value' } });
  const g = await grant();
  const anonymous = factory().anonymous();
  const { secretId } = await anonymous.unwrapSecretId(g.wrappingToken, secretIdCreationPath(g.roleName));
  const { client } = await anonymous.approleLogin({ roleId: g.roleId, secretId });
  try {
    for (const path of [credentialPath('other-bot', 'password'), credentialPath('eligibility-check', 'undeclared')]) {
      await expect(client.kvRead(path, { mount: 'secret' })).rejects.toMatchObject({
        code: 'ORDERLY_E_VAULT_PERMISSION_DENIED',
        message: expect.stringContaining(path),
      });
    }
    const policy = (await root.read(`sys/policies/acl/${versionRoleName('eligibility-check', '1.0.0')}`)) as { data: { policy: string } };
    expect(policy.data.policy).not.toContain('other-bot');
  } finally {
    await client.revokeSelf();
  }
});

test('a lease renews its token past the token TTL while the run goes on', async () => {
  const l = await lease(await grant());
  await new Promise((r) => setTimeout(r, 3500)); // TTL is 2 s: alive only if renewed
  expect(await accessorAlive(l.accessor)).toBe(true);
  await l.release();
  expect(await accessorAlive(l.accessor)).toBe(false);
});

test('a sealed Vault fails the lease with a retryable code, and leaves no token behind', async () => {
  const g = await grant();
  stack.vault!.devVault.seal();
  try {
    await expect(lease(g)).rejects.toMatchObject({ code: 'ORDERLY_E_VAULT_SEALED', retryable: true });
  } finally {
    stack.vault!.devVault.unseal();
  }
});
