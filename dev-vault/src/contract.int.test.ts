import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startDevVault, type DevVault } from './server';
import { field, obj, rawVault, type RawAnswer, type RawVault } from './raw-client';
import { shapeMismatches } from './shape';

/*
 * Contract tests: for each of Vault's documented samples (../shared/vault-api/ from the repo
 * root), the dev Vault's answer to the equivalent request, sent through node-vault, has the same
 * envelope fields with the same JSON types, and the documented status.
 */

const SAMPLES = resolve(__dirname, '../../../shared/vault-api');

function sample(file: string): Record<string, unknown> {
  const parsed = obj(JSON.parse(readFileSync(resolve(SAMPLES, file), 'utf8')));
  const { _source: _ignored, ...rest } = parsed;
  return rest;
}

/** The sample request with some values replaced; every replaced key must exist in the sample. */
function withValues(file: string, values: Record<string, unknown>): Record<string, unknown> {
  const body = sample(file);
  for (const key of Object.keys(values)) expect(Object.keys(body)).toContain(key);
  return { ...body, ...values };
}

const fake = (label: string): string => `fake-${label}-${randomBytes(4).toString('hex')}`;

let dv: DevVault;
let root: RawVault;
let anon: RawVault;

beforeAll(async () => {
  dv = await startDevVault({ port: 0 });
  root = rawVault(dv.address, dv.rootToken);
  anon = rawVault(dv.address);
});
afterAll(() => dv.close());

async function newRole(body: Record<string, unknown> = {}): Promise<{ name: string; roleId: string }> {
  const name = fake('role');
  expect((await root.write(`auth/approle/role/${name}`, body)).statusCode).toBe(204);
  return { name, roleId: String(field(await root.read(`auth/approle/role/${name}/role-id`), 'data').role_id) };
}

async function wrapToken(data: Record<string, unknown>): Promise<string> {
  return String(field(await root.write('sys/wrapping/wrap', data, { 'X-Vault-Wrap-TTL': '300' }), 'wrap_info').token);
}

interface Case {
  /** The documented request sample this case sends (keys kept, values ours where noted). */
  request?: string;
  /** The documented response sample whose shape the answer must have. */
  response?: string;
  status: readonly number[];
  /** Sample fields a real server only sends in situations the dev Vault cannot be in. */
  ignore?: readonly string[];
  run: () => Promise<RawAnswer>;
}

const CASES: Case[] = [
  {
    request: 'approle-role-create.request.json',
    status: [204],
    run: () => root.write(`auth/approle/role/${fake('role')}`, sample('approle-role-create.request.json')),
  },
  {
    response: 'approle-role-read.response.json',
    status: [200],
    run: async () =>
      root.read(`auth/approle/role/${(await newRole({ token_ttl: 1200, token_max_ttl: 1800, secret_id_ttl: 600, secret_id_num_uses: 40 })).name}`),
  },
  {
    response: 'approle-role-id.response.json',
    status: [200],
    run: async () => root.read(`auth/approle/role/${(await newRole()).name}/role-id`),
  },
  {
    request: 'approle-secret-id.request.json',
    response: 'approle-secret-id.response.json',
    status: [200],
    run: async () => root.write(`auth/approle/role/${(await newRole()).name}/secret-id`, sample('approle-secret-id.request.json')),
  },
  {
    // README: a wrapped secret-id answer is shaped like sys-wrapping-wrap.response.json.
    request: 'approle-secret-id.request.json',
    response: 'sys-wrapping-wrap.response.json',
    status: [200],
    run: async () =>
      root.write(`auth/approle/role/${(await newRole()).name}/secret-id`, sample('approle-secret-id.request.json'), { 'X-Vault-Wrap-TTL': '60' }),
  },
  {
    request: 'approle-login.request.json',
    response: 'approle-login.response.json',
    status: [200],
    run: async () => {
      const { name, roleId } = await newRole({ token_ttl: 1200 });
      const secretId = field(await root.write(`auth/approle/role/${name}/secret-id`, {}), 'data').secret_id;
      return anon.write('auth/approle/login', withValues('approle-login.request.json', { role_id: roleId, secret_id: secretId }));
    },
  },
  {
    request: 'sys-wrapping-wrap.request.json',
    response: 'sys-wrapping-wrap.response.json',
    status: [200],
    run: () => root.write('sys/wrapping/wrap', sample('sys-wrapping-wrap.request.json'), { 'X-Vault-Wrap-TTL': '300' }),
  },
  {
    request: 'sys-wrapping-lookup.request.json',
    response: 'sys-wrapping-lookup.response.json',
    status: [200],
    run: async () => anon.write('sys/wrapping/lookup', withValues('sys-wrapping-lookup.request.json', { token: await wrapToken({ zip: 'zap' }) })),
  },
  {
    request: 'sys-wrapping-unwrap.request.json',
    response: 'sys-wrapping-unwrap.response.json',
    status: [200],
    run: async () => root.write('sys/wrapping/unwrap', withValues('sys-wrapping-unwrap.request.json', { token: await wrapToken({ zip: 'zap' }) })),
  },
  {
    response: 'kv2-read.response.json',
    status: [200],
    run: async () => {
      const key = fake('kv');
      await root.write(`secret/metadata/${key}`, { custom_metadata: { owner: 'fake-owner', mission_critical: 'false' } });
      await root.write(`secret/data/${key}`, { data: { foo: 'fake-1' } });
      await root.write(`secret/data/${key}`, { data: { foo: 'fake-2' } });
      return root.read(`secret/data/${key}?version=2`);
    },
  },
  {
    request: 'kv2-write.request.json',
    response: 'kv2-write.response.json',
    status: [200],
    run: async () => {
      const key = fake('kv');
      await root.write(`secret/metadata/${key}`, { custom_metadata: { owner: 'fake-owner', mission_critical: 'false' } });
      return root.write(`secret/data/${key}`, sample('kv2-write.request.json'));
    },
  },
  {
    response: 'kv2-metadata.response.json',
    status: [200],
    run: async () => {
      const key = fake('kv');
      await root.write(`secret/metadata/${key}`, { custom_metadata: { foo: 'fake', bar: '123', baz: 'fake-baz' }, delete_version_after: '3h25m19s' });
      for (const v of ['1', '2', '3']) await root.write(`secret/data/${key}`, { data: { v } });
      return root.read(`secret/metadata/${key}`);
    },
  },
  {
    response: 'kv2-list.response.json',
    status: [200],
    run: async () => {
      const dir = fake('dir');
      await root.write(`secret/data/${dir}/foo`, { data: { a: 'fake' } });
      await root.write(`secret/data/${dir}/foo/bar`, { data: { a: 'fake' } });
      return root.list(`secret/metadata/${dir}`);
    },
  },
  {
    response: 'transit-key-read.response.json',
    status: [200],
    run: async () => {
      const key = fake('key');
      await root.write(`transit/keys/${key}`, {});
      return root.read(`transit/keys/${key}`);
    },
  },
  {
    // Vault 1.12+ answers config writes with the key (200); README documents 204.
    request: 'transit-key-config.request.json',
    status: [200, 204],
    run: async () => {
      const key = fake('key');
      await root.write(`transit/keys/${key}`, {});
      return root.write(`transit/keys/${key}/config`, sample('transit-key-config.request.json'));
    },
  },
  {
    request: 'transit-encrypt.request.json',
    response: 'transit-encrypt.response.json',
    status: [200],
    run: () => root.write(`transit/encrypt/${fake('key')}`, sample('transit-encrypt.request.json')),
  },
  {
    // The sample's ciphertext is from another server's key; the equivalent is one of ours.
    request: 'transit-decrypt.request.json',
    response: 'transit-decrypt.response.json',
    status: [200],
    run: async () => {
      const key = fake('key');
      const ct = field(await root.write(`transit/encrypt/${key}`, sample('transit-encrypt.request.json')), 'data').ciphertext;
      return root.write(`transit/decrypt/${key}`, withValues('transit-decrypt.request.json', { ciphertext: ct }));
    },
  },
  {
    request: 'transit-rewrap.request.json',
    response: 'transit-rewrap.response.json',
    status: [200],
    run: async () => {
      const key = fake('key');
      const ct = field(await root.write(`transit/encrypt/${key}`, sample('transit-encrypt.request.json')), 'data').ciphertext;
      await root.write(`transit/keys/${key}/rotate`, {});
      return root.write(`transit/rewrap/${key}`, withValues('transit-rewrap.request.json', { ciphertext: ct }));
    },
  },
  {
    // The sample's context "Ab3==" is not valid padded base64, which Vault decodes strictly;
    // a valid context is the equivalent request (it is ignored for non-derived keys).
    request: 'transit-datakey.request.json',
    response: 'transit-datakey.response.json',
    status: [200],
    run: async () => {
      const key = fake('key');
      await root.write(`transit/keys/${key}`, {});
      return root.write(`transit/datakey/plaintext/${key}`, withValues('transit-datakey.request.json', { context: 'QWIzPT0=' }));
    },
  },
  {
    // identity_policies only appears when the token's entity has group policies; no identity store here.
    response: 'token-lookup-self.response.json',
    status: [200],
    ignore: ['$.data.identity_policies'],
    run: async () => {
      const created = await root.write('auth/token/create', { policies: ['default'], meta: { username: 'fake-user' }, display_name: 'fake' });
      return rawVault(dv.address, String(field(created, 'auth').client_token)).read('auth/token/lookup-self');
    },
  },
  {
    request: 'token-renew-self.request.json',
    response: 'token-renew-self.response.json',
    status: [200],
    run: async () => {
      const created = await root.write('auth/token/create', { policies: ['default'], meta: { user: 'fake-user' }, ttl: '2h' });
      return rawVault(dv.address, String(field(created, 'auth').client_token)).write('auth/token/renew-self', sample('token-renew-self.request.json'));
    },
  },
  { response: 'sys-health.response.json', status: [200], run: () => root.read('sys/health') },
  {
    response: 'error.response.json',
    status: [403],
    run: async () =>
      rawVault(dv.address, String(field(await root.write('auth/token/create', { policies: ['default'] }), 'auth').client_token)).read('secret/data/x'),
  },
  { response: 'error-empty-list.response.json', status: [404], run: () => root.list(`secret/metadata/${fake('nothing')}`) },
];

/** Samples of engines the dev Vault does not serve: Orderly does not use them (yet). */
const NOT_SERVED: Record<string, string> = {
  'database-creds.response.json': 'database/creds/:name',
  'database-static-creds.response.json': 'database/static-creds/:name',
  'leases-lookup.request.json': 'sys/leases/lookup',
  'leases-lookup.response.json': 'sys/leases/lookup',
  'leases-renew.request.json': 'sys/leases/renew',
  'leases-renew.response.json': 'sys/leases/renew',
  'leases-revoke.request.json': 'sys/leases/revoke',
};

describe('Vault API samples', () => {
  it('are all accounted for: each is a contract case, the status table, or explicitly not served', () => {
    expect(existsSync(SAMPLES)).toBe(true);
    const files = readdirSync(SAMPLES).filter((f) => f.endsWith('.json'));
    const covered = new Set(CASES.flatMap((c) => [c.request, c.response]).filter((f): f is string => f !== undefined));
    const missing = files.filter((f) => !covered.has(f) && !(f in NOT_SERVED) && f !== 'error-status-codes.json');
    expect(missing).toEqual([]);
    expect([...covered, ...Object.keys(NOT_SERVED)].filter((f) => !files.includes(f))).toEqual([]);
  });

  it.each(Object.entries(NOT_SERVED))('%s: the dev Vault has no %s and says so with a 404', async (_file, path) => {
    const answer = await root.write(path.replace(':name', 'fake-role'), { lease_id: 'fake/lease/1' });
    expect(answer.statusCode).toBe(404);
  });

  it.each(CASES.map((c) => [c.response ?? c.request ?? '', c] as const))('%s', async (_name, c) => {
    const answer = await c.run();
    expect(c.status).toContain(answer.statusCode);
    if (c.response !== undefined) {
      expect(shapeMismatches(sample(c.response), answer.body, new Set(c.ignore ?? []))).toEqual([]);
    }
  });

  it('decrypt gives back exactly the documented plaintext, and rewrap moves to the new version', async () => {
    const key = fake('key');
    const { plaintext } = sample('transit-encrypt.request.json');
    const ct = field(await root.write(`transit/encrypt/${key}`, { plaintext }), 'data').ciphertext;
    expect(field(await root.write(`transit/decrypt/${key}`, { ciphertext: ct }), 'data')).toEqual(sample('transit-decrypt.response.json').data);
    await root.write(`transit/keys/${key}/rotate`, {});
    expect(String(field(await root.write(`transit/rewrap/${key}`, { ciphertext: ct }), 'data').ciphertext)).toMatch(/^vault:v2:/);
  });

  it('kv2-list gives the documented keys for the documented layout', async () => {
    const dir = fake('dir');
    await root.write(`secret/data/${dir}/foo`, { data: { a: 'fake' } });
    await root.write(`secret/data/${dir}/foo/bar`, { data: { a: 'fake' } });
    expect(obj((await root.list(`secret/metadata/${dir}`)).body).data).toEqual(sample('kv2-list.response.json').data);
  });
});

describe('error-status-codes.json', () => {
  const table = obj(sample('error-status-codes.json').status_codes);

  /** Produces each documented error body the dev Vault can be made to give. */
  const producers: Record<string, () => Promise<RawAnswer>> = {
    'wrapping token is not valid or does not exist': async () => {
      const token = await wrapToken({ zip: 'zap' });
      await root.write('sys/wrapping/unwrap', { token });
      return root.write('sys/wrapping/unwrap', { token });
    },
    'invalid role or secret ID': async () => anon.write('auth/approle/login', { role_id: (await newRole()).roleId, secret_id: fake('secret') }),
    'missing role_id': () => anon.write('auth/approle/login', { secret_id: fake('secret') }),
    'missing secret_id': async () => anon.write('auth/approle/login', { role_id: (await newRole()).roleId }),
    'missing client token': async () => anon.write('sys/wrapping/unwrap', { token: await wrapToken({ a: 'b' }) }),
    'check-and-set parameter did not match the current version': async () => {
      const path = `secret/data/${fake('kv')}`;
      await root.write(path, { data: { a: 'b' } });
      return root.write(path, { options: { cas: 0 }, data: { a: 'c' } });
    },
    'check-and-set parameter required for this call': async () => {
      const key = fake('kv');
      await root.write(`secret/metadata/${key}`, { cas_required: true });
      return root.write(`secret/data/${key}`, { data: { a: 'b' } });
    },
    'ciphertext or signature version is disallowed by policy (too old)': async () => {
      const key = fake('key');
      const ct = field(await root.write(`transit/encrypt/${key}`, { plaintext: 'eA==' }), 'data').ciphertext;
      await root.write(`transit/keys/${key}/rotate`, {});
      await root.write(`transit/keys/${key}/config`, { min_decryption_version: 2 });
      return root.write(`transit/decrypt/${key}`, { ciphertext: ct });
    },
    'encryption key not found': () => root.write(`transit/decrypt/${fake('nokey')}`, { ciphertext: 'vault:v1:eA==' }),
    'permission denied': async () =>
      rawVault(dv.address, String(field(await root.write('auth/token/create', { policies: ['default'] }), 'auth').client_token)).read('secret/data/x'),
    '': () => root.read(`secret/data/${fake('missing')}`),
    'Vault is sealed': async () => {
      dv.seal();
      try {
        return await root.read('secret/data/x');
      } finally {
        dv.unseal();
      }
    },
  };

  /** Documented bodies the dev Vault never gives, and why. */
  const notProduced: Record<string, string> = {
    '1 error occurred:\n\t* permission denied\n\n': 'the older multierror wording; the dev Vault sends the plain "permission denied"',
    'request path "secret/data/x": rate limit quota exceeded': 'no rate-limit quotas in the dev Vault',
  };

  const documented = Object.entries(table).flatMap(([status, entry]) => {
    const examples = obj(entry).examples as Array<{ body: unknown }>;
    return examples
      .filter((e) => typeof e.body === 'object' && e.body !== null)
      .map((e) => [Number(status), (obj(e.body).errors as string[])[0] ?? ''] as const);
  });

  it('documents at least the errors Orderly maps', () => {
    expect(documented.map(([, m]) => m)).toEqual(
      expect.arrayContaining(['Vault is sealed', 'permission denied', 'wrapping token is not valid or does not exist']),
    );
  });

  it('names a reason for each documented body it never gives', () => {
    expect(Object.keys(notProduced).filter((m) => !documented.some(([, d]) => d === m))).toEqual([]);
  });

  it.each(documented.filter(([, m]) => !(m in notProduced)))('%i %j: same status and exact body', async (status, message) => {
    const produce = producers[message];
    expect(produce).toBeDefined();
    const answer = await (produce as () => Promise<RawAnswer>)();
    expect(answer).toEqual({ statusCode: status, body: { errors: message === '' ? [] : [message] } });
  });

  it('gives the documented non-JSON-error answers: deleted KV version 404 with metadata, sealed health 503', async () => {
    const key = fake('kv');
    await root.write(`secret/data/${key}`, { data: { a: 'fake' } });
    await root.delete(`secret/data/${key}`);
    const deleted = await root.read(`secret/data/${key}`);
    expect(deleted.statusCode).toBe(404);
    expect(
      shapeMismatches(
        { data: { data: null, metadata: { version: 1, created_time: '', deletion_time: '', destroyed: false, custom_metadata: null } } },
        deleted.body,
      ),
    ).toEqual([]);
    expect(field(deleted, 'data').data).toBeNull();
    dv.seal();
    try {
      const health = await root.read('sys/health');
      expect(health.statusCode).toBe(503);
      expect(shapeMismatches(sample('sys-health.response.json'), health.body)).toEqual([]);
      expect(obj(health.body).sealed).toBe(true);
    } finally {
      dv.unseal();
    }
  });

  it('produces only documented status codes, and each documented one it can be in', async () => {
    const documentedCodes = Object.keys(table).map(Number);
    const produced = new Map<number, () => Promise<RawAnswer>>([
      [200, () => root.read('sys/health')],
      [204, () => root.write(`auth/approle/role/${fake('role')}`, {})],
      [400, () => anon.write('auth/approle/login', {})],
      [403, () => rawVault(dv.address, 'hvs' + '.fakeFAKEfake0000000000').read('secret/data/x')],
      [404, () => root.read(`secret/data/${fake('missing')}`)],
      [405, () => root.delete('auth/token/lookup-self')],
      [
        503,
        async () => {
          dv.seal();
          try {
            return await root.read('sys/mounts');
          } finally {
            dv.unseal();
          }
        },
      ],
    ]);
    const cannot: Record<number, string> = {
      412: 'Enterprise eventual consistency',
      429: 'never a standby, no quotas',
      472: 'no DR replication',
      473: 'no performance standby',
      500: 'only on a dev Vault bug',
      501: 'always initialised',
      502: 'no third-party backends',
    };
    expect(documentedCodes.filter((c) => !produced.has(c) && !(c in cannot))).toEqual([]);
    for (const [code, produce] of produced) {
      expect(documentedCodes).toContain(code);
      expect((await produce()).statusCode).toBe(code);
    }
  });
});
