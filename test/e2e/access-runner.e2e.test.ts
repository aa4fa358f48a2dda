import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runnerSigningKeyPath, runnerTokenPath } from '@orderly/control-room';
import { generateSigningKeyPair } from '@orderly/shared';
import { createUser, Stack, startStack } from '../harness';

/**
 * A runner with its own identity (not the bootstrap segment token) runs a real bot for a run an
 * operator started; revoking the identity shuts the runner out on its next request.
 */
const MEMBER = { memberId: 'ZZT100200301', dateOfBirth: '1900-01-15' };
let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
}, 60_000);
afterAll(async () => {
  await stack?.close();
});

test('a registered runner identity claims and runs; once revoked, its claims are refused', async () => {
  // Without its own public key a runner is not registered: the control room makes no private key.
  const keyless = await stack.api('POST', '/v1/runners', { name: 'demo-r1', segment: 'demo' });
  expect({ status: keyless.status, code: keyless.body.error.code }).toEqual({ status: 400, code: 'ORDERLY_E_RUNNER_KEY_REQUIRED' });
  expect((await stack.api('GET', '/v1/runners')).body.runners).toEqual([]);
  // The runner's key pair, made where the runner runs (orderly runner keygen); only the public half is sent.
  const pair = generateSigningKeyPair();
  const registered = await stack.api('POST', '/v1/runners', { name: 'demo-r1', segment: 'demo', publicKey: pair.publicKeyPem });
  expect(registered.status).toBe(201);
  expect(JSON.stringify(registered.body)).not.toContain('PRIVATE KEY');
  // The runner reads its token from this file; the control room loaded the bootstrap token's hash at
  // start, so from now on the runner authenticates as `runner:demo-r1`.
  // With the segment's bootstrap runner revoked, the run below can only succeed on reports signed
  // with the identity's own key, and the bootstrap token no longer opens the runner API.
  const bootstrapToken = readFileSync(runnerTokenPath(join(stack.dataDir, 'secrets'), 'demo'), 'utf8').trim();
  expect((await stack.api('DELETE', '/v1/runners/bootstrap/demo')).status).toBe(200);
  expect((await stack.api('POST', '/v1/runner/runs/00000000-0000-4000-8000-000000000000/claim', { runnerId: 'x' }, bootstrapToken)).status).toBe(401);
  writeFileSync(runnerTokenPath(join(stack.dataDir, 'secrets'), 'demo'), registered.body.token, { mode: 0o600 });
  // And it signs its reports with its own key.
  writeFileSync(runnerSigningKeyPath(join(stack.dataDir, 'secrets'), 'demo'), pair.privateKeyPem, { mode: 0o600 });
  await stack.startRunner();
  await stack.publish();
  const operator = await createUser(stack, 'op-runner', ['operator']);
  const created = await stack.api('POST', '/v1/runs', { bot: 'eligibility-check', input: { portalUrl: stack.portal.url, ...MEMBER } }, operator.token);
  expect(created.status).toBe(201);
  expect(await stack.waitForRun(created.body.id)).toMatchObject({ status: 'succeeded' });
  const runners = await stack.api('GET', '/v1/runners');
  expect(runners.body.runners).toEqual([
    expect.objectContaining({ name: 'demo-r1', segment: 'demo', revoked: false, lastUsedAt: expect.any(String), keyId: registered.body.keyId }),
  ]);

  expect(JSON.stringify(runners.body)).not.toContain(registered.body.token);

  expect((await stack.api('DELETE', '/v1/runners/demo-r1')).status).toBe(200);
  const refused = await stack.api('POST', `/v1/runner/runs/${created.body.id}/claim`, { attempt: 2, runnerId: 'x' }, registered.body.token);
  expect(refused.status).toBe(401);
  expect(refused.body.error.code).toBe('ORDERLY_E_UNAUTHENTICATED');
}, 120_000);
