import { createHash } from 'node:crypto';
import { createArchive, IN_TOTO_PAYLOAD_TYPE, loadPrivateKey, packageStatement, signEnvelope } from '@orderly/shared';
import { Stack, startStack } from '../../../test/harness';

/**
 * A developer's input `pattern` runs on the control room's event loop at every run creation: it
 * must never be able to stall the control room (issue 11, item 4). Real PostgreSQL and Redis.
 */
let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
  await stack.registerKey('test-publisher', stack.publisher.publicKeyPem);
});
afterAll(() => stack.close());

function packageWithPattern(name: string, pattern: string) {
  const manifest = {
    name,
    version: '1.0.0',
    entry: 'bot.js',
    segments: ['demo'],
    input: { type: 'object', properties: { code: { type: 'string', pattern } }, required: ['code'] },
  };
  const archive = createArchive([
    { path: 'bot.json', data: Buffer.from(JSON.stringify(manifest)) },
    { path: 'bot.js', data: Buffer.from('module.exports = {}') },
  ]);
  const statement = packageStatement(name as never, '1.0.0' as never, createHash('sha256').update(archive).digest('hex'));
  const envelope = signEnvelope(IN_TOTO_PAYLOAD_TYPE, Buffer.from(JSON.stringify(statement)), loadPrivateKey(stack.publisher.privateKeyPem));
  return { archive: archive.toString('base64'), envelope };
}

test('a pattern the linear-time matcher cannot compile is refused at publish with its code, and nothing is stored', async () => {
  // Catastrophic for a backtracking engine and not RE2: a backreference under nested repetition.
  const res = await stack.api('POST', '/v1/packages', packageWithPattern('backref-bot', '^(a+)+\\1$'));
  expect(res.status).toBe(400);
  expect(res.body.error.code).toBe('ORDERLY_E_INPUT_PATTERN_UNSUPPORTED');
  expect(res.body.error.message).toContain('input.properties.code.pattern');
  expect((await stack.api('GET', '/v1/packages')).body.packages.map((p: { name: string }) => p.name)).not.toContain('backref-bot');
});

test('a pattern that is exponential for RegExp cannot stall run creation or /healthz', async () => {
  // `^(a|a)*$` is valid RE2, so it is accepted; with RegExp, 40 a's and a b take 2^40 steps.
  expect((await stack.api('POST', '/v1/packages', packageWithPattern('alternation-bot', '^(a|a)*$'))).status).toBe(201);
  const hostile = `${'a'.repeat(40)}b`;
  const started = Date.now();
  const creations = Array.from({ length: 10 }, () => stack.api('POST', '/v1/runs', { bot: 'alternation-bot', segment: 'demo', input: { code: hostile } }));
  // Asked while the hostile creations are in flight: answered by the same event loop.
  const health = await stack.api('GET', '/healthz', undefined, '');
  const healthMs = Date.now() - started;
  const answers = await Promise.all(creations);
  expect(health).toEqual({ status: 200, body: { status: 'ok' } });
  expect(healthMs).toBeLessThan(5000);
  for (const answer of answers) expect({ status: answer.status, code: answer.body.error?.code }).toEqual({ status: 400, code: 'ORDERLY_E_INPUT_INVALID' });
  // The pattern still does its job: a matching input makes a run.
  expect((await stack.api('POST', '/v1/runs', { bot: 'alternation-bot', segment: 'demo', input: { code: 'a'.repeat(10_000) } })).status).toBe(201);
});
