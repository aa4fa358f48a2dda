import { randomBytes } from 'node:crypto';
import { startDevVault, type DevVault } from './server';
import { field, obj, rawVault, type RawVault } from './raw-client';

/*
 * Behaviour of the dev Vault over real HTTP, always through node-vault. The clock is injected so
 * TTLs expire by moving `now`, not by sleeping. All data is generated and clearly fake.
 */

let now = Date.now();
let dv: DevVault;
let root: RawVault;

const fake = (label: string): string => `fake-${label}-${randomBytes(4).toString('hex')}`;
const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');
const errors = (body: unknown): unknown => obj(body).errors;

beforeAll(async () => {
  dv = await startDevVault({ port: 0, now: () => now });
  root = rawVault(dv.address, dv.rootToken);
});

afterAll(async () => {
  await dv.close();
  await dv.close(); // idempotent
});

/** Writes a policy under a fresh name and returns a token holding only it (plus default). */
async function tokenWithPolicy(hcl: string, extra: Record<string, unknown> = {}): Promise<string> {
  const name = fake('policy');
  expect((await root.write(`sys/policies/acl/${name}`, { policy: hcl })).statusCode).toBe(204);
  const created = await root.write('auth/token/create', { policies: [name], ...extra });
  expect(created.statusCode).toBe(200);
  return String(field(created, 'auth').client_token);
}

describe('policies', () => {
  it('denies by default: a token with only the default policy can do nothing but manage itself', async () => {
    const created = await root.write('auth/token/create', { policies: ['default'] });
    const t = rawVault(dv.address, String(field(created, 'auth').client_token));
    expect(await t.read('secret/data/anything')).toEqual({ statusCode: 403, body: { errors: ['permission denied'] } });
    expect((await t.write('auth/token/create', {})).statusCode).toBe(403);
    expect((await t.read('sys/mounts')).statusCode).toBe(403);
    expect((await t.read('sys/policies/acl/default')).statusCode).toBe(403);
    expect((await t.read('no/such/mount')).statusCode).toBe(403);
    expect((await t.read('auth/token/lookup-self')).statusCode).toBe(200);
  });

  it('grants exactly what globs and + wildcards match', async () => {
    const base = fake('bots');
    for (const p of [`${base}/b1/portal`, `${base}/b1/extra/deep`, `${base}/b2/portal`, `${base}x/b1/portal`]) {
      expect((await root.write(`secret/data/${p}`, { data: { password: fake('pw') } })).statusCode).toBe(200);
    }
    const t = rawVault(
      dv.address,
      await tokenWithPolicy(`
      path "secret/data/${base}/+/portal" { capabilities = ["read"] }
      path "secret/data/${base}/b1/*" { capabilities = ["read"] }
      path "secret/data/${base}/b2/portal" { capabilities = ["deny"] }
    `),
    );
    expect((await t.read(`secret/data/${base}/b1/portal`)).statusCode).toBe(200);
    expect((await t.read(`secret/data/${base}/b1/extra/deep`)).statusCode).toBe(200);
    expect((await t.read(`secret/data/${base}/b2/portal`)).statusCode).toBe(403);
    expect((await t.read(`secret/data/${base}x/b1/portal`)).statusCode).toBe(403);
    expect((await t.read(`secret/metadata/${base}/b1/portal`)).statusCode).toBe(403);
    expect((await t.write(`secret/data/${base}/b1/portal`, { data: { x: 'y' } })).statusCode).toBe(403);
  });

  it('asks for create or update depending on whether the secret exists', async () => {
    const path = fake('kv');
    const t = rawVault(dv.address, await tokenWithPolicy(`path "secret/data/${path}" { capabilities = ["update"] }`));
    expect((await t.write(`secret/data/${path}`, { data: { a: '1' } })).statusCode).toBe(403);
    expect((await root.write(`secret/data/${path}`, { data: { a: '1' } })).statusCode).toBe(200);
    expect((await t.write(`secret/data/${path}`, { data: { a: '2' } })).statusCode).toBe(200);
  });

  it('stores, reads, lists and deletes policies at sys/policies/acl and the sys/policy alias', async () => {
    const name = fake('p').toUpperCase();
    const hcl = 'path "secret/data/x" { capabilities = ["read"] }';
    expect((await root.client.addPolicy({ name, rules: hcl })) as unknown).toEqual(expect.objectContaining({ statusCode: 204 }));
    const viaAlias = (await root.client.getPolicy({ name })) as { statusCode: number; body: unknown };
    expect(viaAlias.statusCode).toBe(200);
    expect(field(viaAlias, 'data')).toEqual({ name: name.toLowerCase(), rules: hcl });
    expect(field(await root.read(`sys/policies/acl/${name.toLowerCase()}`), 'data')).toEqual({ name: name.toLowerCase(), policy: hcl });
    expect(field(await root.list('sys/policies/acl'), 'data').keys).toEqual(expect.arrayContaining(['default', 'root', name.toLowerCase()]));
    expect((await root.delete(`sys/policies/acl/${name}`)).statusCode).toBe(204);
    expect(await root.read(`sys/policies/acl/${name}`)).toEqual({ statusCode: 404, body: { errors: [] } });
    expect(await root.delete('sys/policies/acl/default')).toEqual({ statusCode: 400, body: { errors: ['cannot delete "default" policy'] } });
    expect(await root.write('sys/policies/acl/root', { policy: hcl })).toEqual({ statusCode: 400, body: { errors: ['cannot update "root" policy'] } });
    const bad = await root.write('sys/policies/acl/bad', { policy: 'path "x" { capabilities = ["fly"] }' });
    expect(bad.statusCode).toBe(400);
    expect(errors(bad.body)).toEqual([expect.stringMatching(/^failed to parse policy: .*invalid capability "fly"/)]);
  });
});

describe('tokens', () => {
  it('needs a token, and takes it from X-Vault-Token or Authorization: Bearer', async () => {
    expect(await rawVault(dv.address).read('auth/token/lookup-self')).toEqual({ statusCode: 400, body: { errors: ['missing client token'] } });
    expect(await rawVault(dv.address, 'hvs' + '.fakeFAKEfake0000000000').read('auth/token/lookup-self')).toEqual({
      statusCode: 403,
      body: { errors: ['permission denied'] },
    });
    const bearer = await rawVault(dv.address).read('auth/token/lookup-self', { Authorization: `Bearer ${dv.rootToken}` });
    expect(bearer.statusCode).toBe(200);
    expect(field(bearer, 'data').policies).toEqual(['root']);
  });

  it('expires a token at its TTL and renew-self extends it up to the max TTL', async () => {
    const created = await root.write('auth/token/create', { policies: ['default'], ttl: '60s', explicit_max_ttl: '150s' });
    const auth = field(created, 'auth');
    expect(auth).toMatchObject({ lease_duration: 60, renewable: true, policies: ['default'], token_type: 'service' });
    const t = rawVault(dv.address, String(auth.client_token));
    now += 50_000;
    expect(field(await t.read('auth/token/lookup-self'), 'data').ttl).toBe(10);
    const renewed = await t.write('auth/token/renew-self', { increment: '60s' });
    expect(field(renewed, 'auth')).toMatchObject({ lease_duration: 60, client_token: auth.client_token });
    now += 55_000;
    const capped = await t.write('auth/token/renew-self', { increment: '1h' });
    // 105 s since creation, explicit max 150 s: 45 s left, with Vault's warning.
    expect(field(capped, 'auth').lease_duration).toBe(45);
    expect(obj(capped.body).warnings).toEqual([expect.stringMatching(/exceeded the effective max_ttl of "2m30s"; TTL value is capped/)]);
    now += 46_000;
    expect((await t.read('auth/token/lookup-self')).statusCode).toBe(403);
  });

  it('revoke-self makes the token unusable; lookup-accessor hides the id; revoke-accessor revokes', async () => {
    const a = field(await root.write('auth/token/create', { policies: ['default'], meta: { run: fake('run') } }), 'auth');
    const t = rawVault(dv.address, String(a.client_token));
    expect((await t.write('auth/token/revoke-self', {})).statusCode).toBe(204);
    expect(await t.read('auth/token/lookup-self')).toEqual({ statusCode: 403, body: { errors: ['permission denied'] } });
    expect((await root.write('auth/token/lookup', { token: a.client_token })).statusCode).toBe(403);

    const b = field(await root.write('auth/token/create', { policies: ['default'] }), 'auth');
    const byAccessor = field(await root.write('auth/token/lookup-accessor', { accessor: b.accessor }), 'data');
    expect(byAccessor).toMatchObject({ id: '', accessor: b.accessor, policies: ['default'] });
    expect((await root.write('auth/token/revoke-accessor', { accessor: b.accessor })).statusCode).toBe(204);
    expect((await rawVault(dv.address, String(b.client_token)).read('auth/token/lookup-self')).statusCode).toBe(403);
  });

  it('counts num_uses, denied requests included', async () => {
    const a = field(await root.write('auth/token/create', { policies: ['default'], num_uses: 3 }), 'auth');
    const t = rawVault(dv.address, String(a.client_token));
    expect(field(await t.read('auth/token/lookup-self'), 'data').num_uses).toBe(2);
    expect((await t.read('secret/data/x')).statusCode).toBe(403);
    expect((await t.read('auth/token/lookup-self')).statusCode).toBe(200);
    expect((await t.read('auth/token/lookup-self')).statusCode).toBe(403);
  });

  it('lets a non-root token create children only with a subset of its policies', async () => {
    const token = await tokenWithPolicy('path "auth/token/create" { capabilities = ["update"] }');
    const t = rawVault(dv.address, token);
    expect(await t.write('auth/token/create', { policies: ['root'] })).toEqual({
      statusCode: 400,
      body: { errors: ['child policies must be subset of parent'] },
    });
    expect((await t.write('auth/token/create', { policies: ['default'] })).statusCode).toBe(200);
  });
});

describe('approle', () => {
  async function role(body: Record<string, unknown>, mount = 'approle'): Promise<{ name: string; roleId: string }> {
    const name = fake('role');
    expect((await root.write(`auth/${mount}/role/${name}`, body)).statusCode).toBe(204);
    const roleId = String(field(await root.read(`auth/${mount}/role/${name}/role-id`), 'data').role_id);
    return { name, roleId };
  }

  it('reads back a role with Vault defaults and lists roles', async () => {
    const { name } = await role({ token_policies: 'default,reader', token_ttl: '10m', token_max_ttl: '15m', secret_id_num_uses: 1, secret_id_ttl: 600 });
    expect(field(await root.read(`auth/approle/role/${name}`), 'data')).toMatchObject({
      bind_secret_id: true,
      token_policies: ['default', 'reader'],
      token_ttl: 600,
      token_max_ttl: 900,
      secret_id_num_uses: 1,
      secret_id_ttl: 600,
      secret_id_bound_cidrs: [],
      token_bound_cidrs: [],
      token_type: 'default',
      period: 0,
    });
    expect(field(await root.list('auth/approle/role'), 'data').keys).toContain(name);
    expect((await root.delete(`auth/approle/role/${name}`)).statusCode).toBe(204);
    expect((await root.read(`auth/approle/role/${name}`)).statusCode).toBe(404);
  });

  it('lets a num_uses=1 secret ID log in once only, with the role policies on the token', async () => {
    const { name, roleId } = await role({ token_policies: ['reader'], token_ttl: 300, secret_id_num_uses: 1 });
    const secret = field(await root.write(`auth/approle/role/${name}/secret-id`, { metadata: JSON.stringify({ run: 'fake-run-1' }) }), 'data');
    expect(secret).toMatchObject({ secret_id_num_uses: 1, secret_id_ttl: 0 });
    const anon = rawVault(dv.address);
    const login = await anon.write('auth/approle/login', { role_id: roleId, secret_id: secret.secret_id });
    expect(login.statusCode).toBe(200);
    expect(field(login, 'auth')).toMatchObject({
      policies: ['default', 'reader'],
      token_policies: ['default', 'reader'],
      lease_duration: 300,
      renewable: true,
      metadata: { role_name: name, run: 'fake-run-1' },
      orphan: true,
      token_type: 'service',
    });
    expect(await anon.write('auth/approle/login', { role_id: roleId, secret_id: secret.secret_id })).toEqual({
      statusCode: 400,
      body: { errors: ['invalid role or secret ID'] },
    });
    expect(await anon.write('auth/approle/login', { role_id: fake('role-id'), secret_id: secret.secret_id })).toEqual({
      statusCode: 400,
      body: { errors: ['invalid role or secret ID'] },
    });
    expect(await anon.write('auth/approle/login', { secret_id: secret.secret_id })).toEqual({ statusCode: 400, body: { errors: ['missing role_id'] } });
    expect(await anon.write('auth/approle/login', { role_id: roleId })).toEqual({ statusCode: 400, body: { errors: ['missing secret_id'] } });
  });

  it('honours secret ID TTLs, accessor destroy and the role limits', async () => {
    const { name, roleId } = await role({ secret_id_ttl: '120s', secret_id_num_uses: 5 });
    expect((await root.write(`auth/approle/role/${name}/secret-id`, { num_uses: 6 })).statusCode).toBe(400);
    expect((await root.write(`auth/approle/role/${name}/secret-id`, { ttl: 121 })).statusCode).toBe(400);
    const s1 = field(await root.write(`auth/approle/role/${name}/secret-id`, { ttl: 60 }), 'data');
    const s2 = field(await root.write(`auth/approle/role/${name}/secret-id`, {}), 'data');
    expect(s2).toMatchObject({ secret_id_ttl: 120, secret_id_num_uses: 5 });
    now += 61_000;
    const anon = rawVault(dv.address);
    expect((await anon.write('auth/approle/login', { role_id: roleId, secret_id: s1.secret_id })).statusCode).toBe(400);
    const lookup = await root.write(`auth/approle/role/${name}/secret-id-accessor/lookup`, { secret_id_accessor: s2.secret_id_accessor });
    expect(field(lookup, 'data')).toMatchObject({ secret_id_accessor: s2.secret_id_accessor, secret_id_num_uses: 5 });
    expect((await root.write(`auth/approle/role/${name}/secret-id-accessor/destroy`, { secret_id_accessor: s2.secret_id_accessor })).statusCode).toBe(204);
    expect((await anon.write('auth/approle/login', { role_id: roleId, secret_id: s2.secret_id })).statusCode).toBe(400);
  });

  it('enforces secret_id_bound_cidrs at login and token_bound_cidrs on every use', async () => {
    const fenced = await role({ secret_id_bound_cidrs: ['10.0.0.0/8'] });
    const s = field(await root.write(`auth/approle/role/${fenced.name}/secret-id`, {}), 'data');
    const refused = await rawVault(dv.address).write('auth/approle/login', { role_id: fenced.roleId, secret_id: s.secret_id });
    expect(refused.statusCode).toBe(400);
    expect(errors(refused.body)).toEqual([expect.stringMatching(/unauthorized through CIDR restrictions/)]);

    const tokenFenced = await role({ token_bound_cidrs: ['10.0.0.0/8'] });
    const s2 = field(await root.write(`auth/approle/role/${tokenFenced.name}/secret-id`, {}), 'data');
    const login = await rawVault(dv.address).write('auth/approle/login', { role_id: tokenFenced.roleId, secret_id: s2.secret_id });
    expect(login.statusCode).toBe(200);
    expect((await rawVault(dv.address, String(field(login, 'auth').client_token)).read('auth/token/lookup-self')).statusCode).toBe(403);
  });

  it('response-wraps a secret ID: lookup does not consume it, unwrap works once', async () => {
    const { name, roleId } = await role({ secret_id_num_uses: 1 });
    const wrapped = await root.write(`auth/approle/role/${name}/secret-id`, {}, { 'X-Vault-Wrap-TTL': '60s' });
    expect(wrapped.statusCode).toBe(200);
    expect(obj(wrapped.body).data).toBeNull();
    const info = field(wrapped, 'wrap_info');
    expect(info).toMatchObject({ ttl: 60, creation_path: `auth/approle/role/${name}/secret-id` });
    expect(info).not.toHaveProperty('wrapped_accessor');
    const anon = rawVault(dv.address);
    const lookup = await anon.write('sys/wrapping/lookup', { token: info.token });
    expect(field(lookup, 'data')).toEqual({ creation_path: `auth/approle/role/${name}/secret-id`, creation_time: info.creation_time, creation_ttl: 60 });
    expect((await anon.write('sys/wrapping/lookup', { token: info.token })).statusCode).toBe(200);

    // Unwrap with the wrapping token itself as the credential, no body.
    const unwrapped = await rawVault(dv.address, String(info.token)).write('sys/wrapping/unwrap', {});
    expect(unwrapped.statusCode).toBe(200);
    expect(field(unwrapped, 'data')).toMatchObject({ secret_id_num_uses: 1, secret_id: expect.any(String) });
    const invalid = { statusCode: 400, body: { errors: ['wrapping token is not valid or does not exist'] } };
    expect(await rawVault(dv.address, String(info.token)).write('sys/wrapping/unwrap', {})).toEqual(invalid);
    expect(await root.write('sys/wrapping/unwrap', { token: info.token })).toEqual(invalid);
    expect(await anon.write('sys/wrapping/lookup', { token: info.token })).toEqual(invalid);
    const login = await anon.write('auth/approle/login', { role_id: roleId, secret_id: field(unwrapped, 'data').secret_id });
    expect(login.statusCode).toBe(200);
  });

  it('expires wrapping tokens, refuses a body token without a client token, burns one used elsewhere', async () => {
    const w1 = field(await root.write('sys/wrapping/wrap', { note: fake('note') }, { 'X-Vault-Wrap-TTL': '30' }), 'wrap_info');
    now += 31_000;
    expect((await root.write('sys/wrapping/unwrap', { token: w1.token })).statusCode).toBe(400);

    const w2 = field(await root.write('sys/wrapping/wrap', { note: fake('note') }, { 'X-Vault-Wrap-TTL': '30' }), 'wrap_info');
    expect(await rawVault(dv.address).write('sys/wrapping/unwrap', { token: w2.token })).toEqual({
      statusCode: 400,
      body: { errors: ['missing client token'] },
    });
    // A wrapping token presented for any other path is denied, and its single use is gone.
    expect((await rawVault(dv.address, String(w2.token)).read('secret/data/x')).statusCode).toBe(403);
    expect((await root.write('sys/wrapping/unwrap', { token: w2.token })).statusCode).toBe(400);
    expect(await root.write('sys/wrapping/wrap', { a: 'b' })).toEqual({
      statusCode: 400,
      body: { errors: ['endpoint requires response wrapping to be used'] },
    });
  });

  it('names the wrapped token accessor when wrapping a login', async () => {
    const { name, roleId } = await role({});
    const s = field(await root.write(`auth/approle/role/${name}/secret-id`, {}), 'data');
    const wrapped = field(
      await rawVault(dv.address).write('auth/approle/login', { role_id: roleId, secret_id: s.secret_id }, { 'X-Vault-Wrap-TTL': '60s' }),
      'wrap_info',
    );
    const unwrapped = await root.write('sys/wrapping/unwrap', { token: wrapped.token });
    expect(field(unwrapped, 'auth').accessor).toBe(wrapped.wrapped_accessor);
  });

  it('works at another mount enabled through node-vault, next to KV v2 mounted the same way', async () => {
    const mount = fake('approle');
    expect((await root.client.enableAuth({ mount_point: mount, type: 'approle' })) as unknown).toMatchObject({ statusCode: 204 });
    expect(((await root.client.enableAuth({ mount_point: mount, type: 'approle' })) as { statusCode: number }).statusCode).toBe(400);
    expect(Object.keys(field(await root.read('sys/auth'), 'data'))).toEqual(expect.arrayContaining(['token/', 'approle/', `${mount}/`]));
    const { name, roleId } = await role({}, mount);
    const s = field(await root.write(`auth/${mount}/role/${name}/secret-id`, {}), 'data');
    const login = await rawVault(dv.address).write(`auth/${mount}/login`, { role_id: roleId, secret_id: s.secret_id });
    expect(field(login, 'auth').accessor).toEqual(expect.any(String));

    const kv = fake('kv');
    expect((await root.client.mount({ mount_point: kv, type: 'kv', options: { version: '2' } })) as unknown).toMatchObject({ statusCode: 204 });
    expect((await root.write(`${kv}/data/a`, { data: { v: '1' } })).statusCode).toBe(200);
    expect(field(await root.read(`${kv}/data/a`), 'data').data).toEqual({ v: '1' });
    expect(Object.keys(field(await root.read('sys/mounts'), 'data'))).toEqual(expect.arrayContaining(['secret/', 'transit/', `${kv}/`]));
    expect(((await root.client.mount({ mount_point: fake('kv1'), type: 'kv' })) as { statusCode: number }).statusCode).toBe(400);
    expect(((await root.client.mount({ mount_point: kv, type: 'transit' })) as { statusCode: number }).statusCode).toBe(400);
    expect(((await root.client.unmount({ mount_point: kv })) as { statusCode: number }).statusCode).toBe(204);
    expect((await root.read(`${kv}/data/a`)).statusCode).toBe(404);
  });
});

describe('kv v2', () => {
  it('versions, reads by version, and enforces check-and-set like Vault', async () => {
    const path = `secret/data/${fake('cred')}`;
    const w1 = await root.write(path, { options: { cas: 0 }, data: { password: 'fake-pw-1' } });
    expect(field(w1, 'data')).toMatchObject({ version: 1, destroyed: false, deletion_time: '', custom_metadata: null });
    const conflict = { statusCode: 400, body: { errors: ['check-and-set parameter did not match the current version'] } };
    expect(await root.write(path, { options: { cas: 0 }, data: { password: 'fake-pw-x' } })).toEqual(conflict);
    expect(await root.write(path, { options: { cas: 2 }, data: { password: 'fake-pw-x' } })).toEqual(conflict);
    expect(field(await root.write(path, { options: { cas: 1 }, data: { password: 'fake-pw-2' } }), 'data').version).toBe(2);
    expect(field(await root.read(path), 'data')).toMatchObject({ data: { password: 'fake-pw-2' }, metadata: { version: 2 } });
    expect(field(await root.read(`${path}?version=1`), 'data')).toMatchObject({ data: { password: 'fake-pw-1' }, metadata: { version: 1 } });
    expect(await root.read(`${path}?version=9`)).toEqual({ statusCode: 404, body: { errors: [] } });
    expect(await root.write(path, { options: {} })).toEqual({ statusCode: 400, body: { errors: ['no data provided'] } });
  });

  it('requires cas when cas_required is set on the key', async () => {
    const key = fake('cred');
    expect((await root.write(`secret/metadata/${key}`, { cas_required: true })).statusCode).toBe(204);
    expect(await root.write(`secret/data/${key}`, { data: { a: 'b' } })).toEqual({
      statusCode: 400,
      body: { errors: ['check-and-set parameter required for this call'] },
    });
    expect((await root.write(`secret/data/${key}`, { options: { cas: 0 }, data: { a: 'b' } })).statusCode).toBe(200);
  });

  it('soft-deletes, undeletes and destroys versions; deleted reads are 404 with metadata', async () => {
    const key = fake('cred');
    await root.write(`secret/data/${key}`, { data: { v: '1' } });
    await root.write(`secret/data/${key}`, { data: { v: '2' } });
    expect((await root.delete(`secret/data/${key}`)).statusCode).toBe(204);
    const deleted = await root.read(`secret/data/${key}`);
    expect(deleted.statusCode).toBe(404);
    expect(field(deleted, 'data')).toMatchObject({ data: null, metadata: { version: 2, destroyed: false, deletion_time: expect.stringMatching(/^\d{4}-/) } });
    expect((await root.write(`secret/undelete/${key}`, { versions: [2] })).statusCode).toBe(204);
    expect(field(await root.read(`secret/data/${key}`), 'data').data).toEqual({ v: '2' });
    expect((await root.write(`secret/destroy/${key}`, { versions: [1] })).statusCode).toBe(204);
    expect(field(await root.read(`secret/data/${key}?version=1`), 'data')).toMatchObject({ data: null, metadata: { destroyed: true } });
    expect((await root.write(`secret/delete/${key}`, { versions: [2] })).statusCode).toBe(204);
    const meta = field(await root.read(`secret/metadata/${key}`), 'data');
    expect(meta).toMatchObject({ current_version: 2, oldest_version: 0, versions: { 1: { destroyed: true }, 2: { destroyed: false } } });
    expect((await root.delete(`secret/metadata/${key}`)).statusCode).toBe(204);
    expect(await root.read(`secret/metadata/${key}`)).toEqual({ statusCode: 404, body: { errors: [] } });
  });

  it('keeps max_versions versions and reports oldest_version', async () => {
    const key = fake('cred');
    await root.write(`secret/metadata/${key}`, { max_versions: 2 });
    for (const v of ['1', '2', '3']) await root.write(`secret/data/${key}`, { data: { v } });
    expect(field(await root.read(`secret/metadata/${key}`), 'data')).toMatchObject({ current_version: 3, oldest_version: 2, max_versions: 2 });
    expect((await root.read(`secret/data/${key}?version=1`)).statusCode).toBe(404);
  });

  it('lists with the LIST method and with ?list=true; nothing to list is a bare 404', async () => {
    const dir = fake('dir');
    await root.write(`secret/data/${dir}/a`, { data: { x: '1' } });
    await root.write(`secret/data/${dir}/sub/b`, { data: { x: '1' } });
    const listed = await root.list(`secret/metadata/${dir}`);
    expect(listed.statusCode).toBe(200);
    expect(field(listed, 'data').keys).toEqual(['a', 'sub/']);
    expect(field(await root.read(`secret/metadata/${dir}/?list=true`), 'data').keys).toEqual(['a', 'sub/']);
    expect(await root.list(`secret/metadata/${fake('empty')}`)).toEqual({ statusCode: 404, body: { errors: [] } });
  });
});

describe('transit', () => {
  const enc = async (key: string, text: string): Promise<string> =>
    String(field(await root.write(`transit/encrypt/${key}`, { plaintext: b64(text) }), 'data').ciphertext);

  it('encrypts with real AES-256-GCM in vault:v<N>: form, and detects tampering', async () => {
    const key = fake('key');
    expect(field(await root.write(`transit/keys/${key}`, {}), 'data')).toMatchObject({ type: 'aes256-gcm96', latest_version: 1 });
    const ct = await enc(key, 'fake member id 000-FAKE');
    expect(ct).toMatch(/^vault:v1:[A-Za-z0-9+/]+=*$/);
    // 12-byte nonce + ciphertext + 16-byte tag.
    expect(Buffer.from(ct.slice(9), 'base64').length).toBe(12 + 'fake member id 000-FAKE'.length + 16);
    expect(field(await root.write(`transit/decrypt/${key}`, { ciphertext: ct }), 'data').plaintext).toBe(b64('fake member id 000-FAKE'));
    const raw = Buffer.from(ct.slice(9), 'base64');
    raw[raw.length - 20] = (raw[raw.length - 20] ?? 0) ^ 1;
    expect(await root.write(`transit/decrypt/${key}`, { ciphertext: `vault:v1:${raw.toString('base64')}` })).toEqual({
      statusCode: 400,
      body: { errors: ['cipher: message authentication failed'] },
    });
    expect(await root.write(`transit/decrypt/${fake('nokey')}`, { ciphertext: ct })).toEqual({
      statusCode: 400,
      body: { errors: ['encryption key not found'] },
    });
    const aad = await root.write(`transit/encrypt/${key}`, { plaintext: b64('x'), associated_data: b64('run-1') });
    expect((await root.write(`transit/decrypt/${key}`, { ciphertext: field(aad, 'data').ciphertext, associated_data: b64('run-2') })).statusCode).toBe(400);
  });

  it('rotates, decrypts old versions, rewraps, and refuses versions below min_decryption_version', async () => {
    const key = fake('key');
    const v1 = await enc(key, 'fake-secret-v1'); // encrypt upserts the key
    expect(field(await root.write(`transit/keys/${key}/rotate`, {}), 'data').latest_version).toBe(2);
    const v2 = await enc(key, 'fake-secret-v2');
    expect(v2.startsWith('vault:v2:')).toBe(true);
    expect(field(await root.write(`transit/decrypt/${key}`, { ciphertext: v1 }), 'data').plaintext).toBe(b64('fake-secret-v1'));
    const rewrapped = field(await root.write(`transit/rewrap/${key}`, { ciphertext: v1 }), 'data');
    expect(rewrapped).toMatchObject({ ciphertext: expect.stringMatching(/^vault:v2:/), key_version: 2 });
    expect((await root.write(`transit/keys/${key}/config`, { min_decryption_version: 3 })).statusCode).toBe(400);
    expect((await root.write(`transit/keys/${key}/config`, { min_decryption_version: 2 })).statusCode).toBe(200);
    const tooOld = { statusCode: 400, body: { errors: ['ciphertext or signature version is disallowed by policy (too old)'] } };
    expect(await root.write(`transit/decrypt/${key}`, { ciphertext: v1 })).toEqual(tooOld);
    expect(await root.write(`transit/rewrap/${key}`, { ciphertext: v1 })).toEqual(tooOld);
    expect(field(await root.write(`transit/decrypt/${key}`, { ciphertext: rewrapped.ciphertext }), 'data').plaintext).toBe(b64('fake-secret-v1'));
    expect(Object.keys(obj(field(await root.read(`transit/keys/${key}`), 'data').keys))).toEqual(['2']);
  });

  it('returns data keys whose ciphertext decrypts to the plaintext key', async () => {
    const key = fake('key');
    await root.write(`transit/keys/${key}`, { type: 'aes256-gcm96' });
    const dk = field(await root.write(`transit/datakey/plaintext/${key}`, {}), 'data');
    expect(Buffer.from(String(dk.plaintext), 'base64')).toHaveLength(32);
    expect(field(await root.write(`transit/decrypt/${key}`, { ciphertext: dk.ciphertext }), 'data').plaintext).toBe(dk.plaintext);
    const wrapped = field(await root.write(`transit/datakey/wrapped/${key}`, { bits: 512 }), 'data');
    expect(wrapped).not.toHaveProperty('plaintext');
    expect(Buffer.from(String(field(await root.write(`transit/decrypt/${key}`, { ciphertext: wrapped.ciphertext }), 'data').plaintext), 'base64')).toHaveLength(
      64,
    );
  });

  it('signs and verifies with ed25519, honouring min_decryption_version', async () => {
    const key = fake('signer');
    const created = field(await root.write(`transit/keys/${key}`, { type: 'ed25519' }), 'data');
    expect(created).toMatchObject({ type: 'ed25519', supports_signing: true, supports_encryption: false });
    expect(obj(obj(created.keys)['1'])).toMatchObject({ name: 'ed25519', public_key: expect.any(String) });
    const input = b64('fake release attestation');
    const sig = field(await root.write(`transit/sign/${key}`, { input }), 'data');
    expect(sig).toMatchObject({ signature: expect.stringMatching(/^vault:v1:/), key_version: 1 });
    expect(field(await root.write(`transit/verify/${key}`, { input, signature: sig.signature }), 'data').valid).toBe(true);
    expect(field(await root.write(`transit/verify/${key}`, { input: b64('fake tampered'), signature: sig.signature }), 'data').valid).toBe(false);
    await root.write(`transit/keys/${key}/rotate`, {});
    await root.write(`transit/keys/${key}/config`, { min_decryption_version: 2 });
    expect((await root.write(`transit/verify/${key}`, { input, signature: sig.signature })).statusCode).toBe(400);
    const aes = fake('key');
    await root.write(`transit/keys/${aes}`, {});
    expect(await root.write(`transit/sign/${aes}`, { input })).toEqual({
      statusCode: 400,
      body: { errors: ['key type aes256-gcm96 does not support signing'] },
    });
    expect((await root.write(`transit/encrypt/${key}`, { plaintext: input })).statusCode).toBe(400);
  });

  it('deletes a key only once deletion_allowed is set', async () => {
    const key = fake('key');
    await root.write(`transit/keys/${key}`, {});
    expect(await root.delete(`transit/keys/${key}`)).toEqual({ statusCode: 400, body: { errors: ['deletion is not allowed for this key'] } });
    await root.write(`transit/keys/${key}/config`, { deletion_allowed: true });
    expect((await root.delete(`transit/keys/${key}`)).statusCode).toBe(204);
    expect((await root.read(`transit/keys/${key}`)).statusCode).toBe(404);
  });
});

describe('seal', () => {
  afterEach(() => dv.unseal());

  it('answers 503 "Vault is sealed" on every path but health, seal-status and unseal', async () => {
    const paths: Array<[string, string, unknown?]> = [
      ['GET', 'secret/data/x'],
      ['POST', 'secret/data/x', { data: { a: 'b' } }],
      ['GET', 'auth/token/lookup-self'],
      ['POST', 'auth/approle/login', { role_id: 'x', secret_id: 'y' }],
      ['POST', 'transit/encrypt/k', { plaintext: b64('x') }],
      ['GET', 'sys/mounts'],
      ['GET', 'sys/policies/acl/default'],
      ['POST', 'sys/wrapping/lookup', { token: 'x' }],
      ['POST', 'sys/wrapping/unwrap', { token: 'x' }],
      ['GET', 'no/such/path'],
      ['LIST', 'secret/metadata/'],
    ];
    dv.seal();
    for (const [method, path, body] of paths) {
      expect(await root.request(method, path, body)).toEqual({ statusCode: 503, body: { errors: ['Vault is sealed'] } });
    }
    const health = await root.read('sys/health');
    expect(health.statusCode).toBe(503);
    expect(obj(health.body)).toMatchObject({ sealed: true, initialized: true });
    expect((await root.read('sys/health?sealedcode=299')).statusCode).toBe(299);
    expect(obj((await root.read('sys/seal-status')).body)).toMatchObject({ sealed: true, t: 1, n: 1 });
  });

  it('seals over HTTP (root or sudo only) and unseals with the unseal key; tokens survive', async () => {
    const t = rawVault(dv.address, await tokenWithPolicy('path "sys/seal" { capabilities = ["update"] }'));
    expect((await t.write('sys/seal', {})).statusCode).toBe(403);
    expect((await root.write('sys/seal', {})).statusCode).toBe(204);
    expect((await root.read('auth/token/lookup-self')).statusCode).toBe(503);
    expect(await root.write('sys/unseal', { key: Buffer.alloc(32, 7).toString('base64') })).toEqual({
      statusCode: 400,
      body: { errors: ['Unseal failed, invalid key'] },
    });
    const unsealed = await rawVault(dv.address).write('sys/unseal', { key: Buffer.from(dv.unsealKey, 'base64').toString('hex') });
    expect(unsealed.statusCode).toBe(200);
    expect(obj(unsealed.body).sealed).toBe(false);
    expect((await root.read('auth/token/lookup-self')).statusCode).toBe(200);
  });
});

describe('http surface', () => {
  it('serves HEAD sys/health, 404 outside /v1 and unknown routes, 405 for an unsupported operation', async () => {
    expect(await root.request('HEAD', 'sys/health')).toEqual({ statusCode: 200, body: '' });
    expect((await root.read('sys/health?activecode=218')).statusCode).toBe(218);
    expect((await root.read('sys/health?activecode=abc')).statusCode).toBe(400);
    expect(await root.read('no/such/mount')).toEqual({ statusCode: 404, body: { errors: ['no handler for route "no/such/mount". route entry not found.'] } });
    expect(await root.delete('auth/token/lookup-self')).toEqual({ statusCode: 405, body: { errors: ['unsupported operation'] } });
    expect(await root.request('PATCH', 'secret/data/x', { data: {} })).toEqual({ statusCode: 405, body: { errors: ['unsupported operation'] } });
    const apiVersionless = rawVault(dv.address, dv.rootToken);
    apiVersionless.client.apiVersion = 'v2';
    expect((await apiVersionless.read('sys/health')).statusCode).toBe(404);
  });

  it('takes large bodies across many TCP packets, and refuses ill-typed fields with a 400', async () => {
    const key = fake('big');
    const blob = randomBytes(768 * 1024).toString('base64');
    expect((await root.write(`secret/data/${key}`, { data: { blob } })).statusCode).toBe(200);
    expect(field(await root.read(`secret/data/${key}`), 'data').data).toEqual({ blob });
    expect(field(await root.write('auth/token/create', { policies: 'default', num_uses: '2', ttl: '90' }), 'auth')).toMatchObject({
      num_uses: 2,
      lease_duration: 90,
    });
    expect(await root.write('auth/token/create', { num_uses: 'many' })).toEqual({
      statusCode: 400,
      body: { errors: ['error converting input for field "num_uses"'] },
    });
    expect(await root.write(`secret/data/${key}`, { data: 'not-a-map' })).toEqual({
      statusCode: 400,
      body: { errors: ['error converting input for field "data"'] },
    });
  });

  it('answers with every envelope field, typed like Vault', async () => {
    const answer = await root.read('auth/token/lookup-self');
    expect(obj(answer.body)).toEqual({
      request_id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      lease_id: '',
      renewable: false,
      lease_duration: 0,
      data: expect.any(Object),
      wrap_info: null,
      warnings: null,
      auth: null,
      mount_type: 'token',
    });
  });
});
