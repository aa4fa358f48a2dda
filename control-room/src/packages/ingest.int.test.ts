import { createHash, randomBytes } from 'node:crypto';
import { createArchive, generateSigningKeyPair, IN_TOTO_PAYLOAD_TYPE, loadPrivateKey, packageStatement, signEnvelope } from '@orderly/shared';
import { rawTgz } from '@orderly/shared/testing';
import { ELIGIBILITY_BOT, Stack, startStack } from '../../../test/harness';
import { packBot } from '../cli/pack';

/** Package ingest against real PostgreSQL: every refusal has a stable code and stores nothing. */
let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
  await stack.registerKey('test-publisher', stack.publisher.publicKeyPem);
});
afterAll(() => stack.close());

const MANIFEST = { name: 'hostile', version: '1.0.0', entry: 'bot.js', segments: ['demo'], input: { type: 'object', properties: {} } };

function signed(archive: Buffer, privateKeyPem = stack.publisher.privateKeyPem, name = 'hostile', version = '1.0.0') {
  const statement = packageStatement(name as never, version as never, createHash('sha256').update(archive).digest('hex'));
  return signEnvelope(IN_TOTO_PAYLOAD_TYPE, Buffer.from(JSON.stringify(statement)), loadPrivateKey(privateKeyPem));
}

const publish = (archive: Buffer, envelope: unknown) => stack.api('POST', '/v1/packages', { archive: archive.toString('base64'), envelope });
const packageCount = async () => (await stack.api('GET', '/v1/packages')).body.packages.length as number;

test('a signed package is stored; the same bytes again are a no-op; other bytes for the version are refused', async () => {
  const packed = await packBot(ELIGIBILITY_BOT, stack.publisher.privateKeyPem);
  const first = await publish(packed.archive, packed.envelope);
  expect(first.status).toBe(201);
  expect(first.body).toMatchObject({ name: 'eligibility-check', version: '1.0.0', digest: packed.digest });
  expect((await publish(packed.archive, packed.envelope)).status).toBe(200);

  const other = createArchive([
    { path: 'bot.json', data: Buffer.from(JSON.stringify({ ...MANIFEST, name: 'eligibility-check' })) },
    { path: 'bot.js', data: Buffer.from('module.exports = {}') },
  ]);
  const conflict = await publish(other, signed(other, undefined, 'eligibility-check'));
  expect(conflict.status).toBe(409);
  expect(conflict.body.error.code).toBe('ORDERLY_E_PACKAGE_VERSION_CONFLICT');
});

test('packing is deterministic: the same folder gives the same bytes', async () => {
  const [a, b] = await Promise.all([packBot(ELIGIBILITY_BOT, stack.publisher.privateKeyPem), packBot(ELIGIBILITY_BOT, stack.publisher.privateKeyPem)]);
  expect(a.archive.equals(b.archive)).toBe(true);
  expect(a.digest).toBe(b.digest);
});

describe('refusals: stable code, nothing stored', () => {
  const good = () =>
    createArchive([
      { path: 'bot.json', data: Buffer.from(JSON.stringify(MANIFEST)) },
      { path: 'bot.js', data: Buffer.from('module.exports = {}') },
    ]);
  const cases: [string, () => { archive: Buffer; envelope: unknown }, number, string][] = [
    [
      'signed by an unregistered key',
      () => ({ archive: good(), envelope: signed(good(), generateSigningKeyPair().privateKeyPem) }),
      400,
      'ORDERLY_E_KEY_UNKNOWN',
    ],
    [
      'bytes that do not match the signed digest',
      () => {
        const archive = good();
        const envelope = signed(archive);
        const tampered = createArchive([
          { path: 'bot.json', data: Buffer.from(JSON.stringify(MANIFEST)) },
          { path: 'bot.js', data: Buffer.from('module.exports = { evil: 1 }') },
        ]);
        return { archive: tampered, envelope };
      },
      400,
      'ORDERLY_E_PACKAGE_DIGEST_MISMATCH',
    ],
    [
      'a malformed manifest',
      () => {
        const archive = createArchive([
          { path: 'bot.json', data: Buffer.from('{"name": "Not Valid"') },
          { path: 'bot.js', data: Buffer.from('') },
        ]);
        return { archive, envelope: signed(archive) };
      },
      400,
      'ORDERLY_E_MANIFEST_INVALID',
    ],
    [
      'a manifest naming an unknown segment',
      () => {
        const archive = createArchive([
          { path: 'bot.json', data: Buffer.from(JSON.stringify({ ...MANIFEST, segments: ['nowhere'] })) },
          { path: 'bot.js', data: Buffer.from('') },
        ]);
        return { archive, envelope: signed(archive) };
      },
      400,
      'ORDERLY_E_SEGMENT_UNKNOWN',
    ],
    [
      'an archive entry with ..',
      () => {
        const archive = rawTgz([
          { name: 'bot.json', data: JSON.stringify(MANIFEST) },
          { name: '../escape.js', data: 'x' },
        ]);
        return { archive, envelope: signed(archive) };
      },
      400,
      'ORDERLY_E_PACKAGE_INVALID',
    ],
    [
      'an archive entry with an absolute path',
      () => {
        const archive = rawTgz([
          { name: 'bot.json', data: JSON.stringify(MANIFEST) },
          { name: '/etc/cron.d/x', data: 'x' },
        ]);
        return { archive, envelope: signed(archive) };
      },
      400,
      'ORDERLY_E_PACKAGE_INVALID',
    ],
    [
      'an archive with a symbolic link',
      () => {
        const archive = rawTgz([
          { name: 'bot.json', data: JSON.stringify(MANIFEST) },
          { name: 'bot.js', type: '2', linkname: '/etc/passwd' },
        ]);
        return { archive, envelope: signed(archive) };
      },
      400,
      'ORDERLY_E_PACKAGE_INVALID',
    ],
    [
      'an archive with a hard link',
      () => {
        const archive = rawTgz([
          { name: 'bot.json', data: JSON.stringify(MANIFEST) },
          { name: 'bot.js', type: '1', linkname: 'bot.json' },
        ]);
        return { archive, envelope: signed(archive) };
      },
      400,
      'ORDERLY_E_PACKAGE_INVALID',
    ],
    [
      'an upload over the size limit',
      () => {
        const archive = randomBytes(2 * 1024 * 1024);
        return { archive, envelope: signed(archive) };
      },
      413,
      'ORDERLY_E_BODY_TOO_LARGE',
    ],
    [
      'an archive over the package limit',
      () => {
        const archive = randomBytes(1024 * 1024 + 10);
        return { archive, envelope: signed(archive) };
      },
      413,
      'ORDERLY_E_PACKAGE_TOO_LARGE',
    ],
    ['an envelope that is not DSSE', () => ({ archive: good(), envelope: { hello: 'world' } }), 400, 'ORDERLY_E_BAD_REQUEST'],
  ];
  test.each(cases)('%s', async (_name, make, status, code) => {
    const before = await packageCount();
    const { archive, envelope } = make();
    const res = await publish(archive, envelope);
    expect({ status: res.status, code: res.body?.error?.code }).toEqual({ status, code });
    expect(JSON.stringify(res.body)).not.toMatch(/at .*\.(ts|js):\d+/); // no stack trace
    expect(await packageCount()).toBe(before);
  });
});

test('malformed JSON and unauthenticated uploads are refused with codes', async () => {
  const response = await fetch(`${stack.controlRoom.url}/v1/packages`, {
    method: 'POST',
    headers: { authorization: `Bearer ${stack.adminToken}`, 'content-type': 'application/json' },
    body: '{"archive": ',
  });
  expect(response.status).toBe(400);
  expect(((await response.json()) as { error: { code: string } }).error.code).toBe('ORDERLY_E_BAD_REQUEST');
  const anonymous = await stack.api('POST', '/v1/packages', { archive: '', envelope: {} }, '');
  expect(anonymous.status).toBe(401);
  expect(anonymous.body.error.code).toBe('ORDERLY_E_UNAUTHENTICATED');
});
