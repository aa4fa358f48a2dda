import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { createUser, Stack, startStack } from '../../../test/harness';
import { buildProgram } from '../cli/main';
import { packBot } from '../cli/pack';
import { AuditLog } from '../audit/audit';
import { Db, postgresDb } from '../db/db';
import { BotInventoryView } from './inventory';
import { ComplianceReport } from './report';
import { DisposalListView, Retention } from './retention';

/** The bot data inventory, the contacts rule and the disposal records on a real stack (PostgreSQL, `live` a production segment). */
let stack: Stack;
let pg: Client;
let db: Db;
const CONTACTS = { owner: 'Fake Owner <owner@example.test>', dataSteward: 'Fake Steward', securityContact: 'fake-security@example.test' };

beforeAll(async () => {
  stack = await startStack({ vault: false, segments: 'demo,live', controlRoomEnv: { ORDERLY_PROD_SEGMENTS: 'live' } });
  pg = new Client({ connectionString: stack.databaseUrl });
  await pg.connect();
  db = postgresDb(stack.databaseUrl!);
  expect((await stack.registerKey('test-publisher', stack.publisher.publicKeyPem)).status).toBe(201);
}, 120_000);
afterAll(async () => {
  await db?.close();
  await pg?.end();
  await stack?.close();
});

/** Writes a tiny API-only bot and publishes it as the bootstrap admin; answers the raw response. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function publish(name: string, version: string, manifest: Record<string, unknown>): Promise<{ status: number; body: any }> {
  const dir = join(stack.dataDir, `${name}-${version}`);
  mkdirSync(join(dir, 'src'), { recursive: true });
  writeFileSync(
    join(dir, 'bot.json'),
    JSON.stringify({
      name,
      version,
      entry: 'src/index.ts',
      browser: false,
      timeoutSeconds: 30,
      attempts: 1,
      input: { type: 'object', properties: { memberId: { type: 'string' } } },
      phi: ['memberId'],
      hosts: ['portal.example.test'],
      ...manifest,
    }),
  );
  writeFileSync(join(dir, 'src', 'index.ts'), 'export default { orderlyBot: 1, async run() { return { ok: true }; } };\n');
  const packed = await packBot(dir, stack.publisher.privateKeyPem);
  return stack.api('POST', '/v1/packages', { archive: packed.archive.toString('base64'), envelope: packed.envelope });
}

/** Runs `orderly …` in-process against the stack and returns what it printed. */
async function orderly(...args: string[]): Promise<string> {
  const printed: string[] = [];
  const write = process.stdout.write;
  process.stdout.write = ((chunk: string) => printed.push(chunk) > 0) as typeof process.stdout.write;
  try {
    await buildProgram().parseAsync(['node', 'orderly', '--url', stack.controlRoom.url, '--token', stack.adminToken, ...args]);
  } finally {
    process.stdout.write = write;
  }
  return printed.join('');
}

const check = async (): Promise<ComplianceReport> => {
  const res = await stack.api('GET', '/v1/compliance');
  expect(res.status).toBe(200);
  return res.body as ComplianceReport;
};
const resultOf = (report: ComplianceReport, id: string) => report.results.find((r) => r.checkId === id);

test('a package for a production segment without contacts is refused at publish; with them, or outside production, it is stored', async () => {
  const refused = await publish('fake-live-bot', '1.0.0', { segments: ['demo', 'live'] });
  expect(refused.status).toBe(400);
  expect(refused.body.error).toMatchObject({ code: 'ORDERLY_E_CONTACTS_REQUIRED', details: { segments: ['live'] } });
  expect(refused.body.error.message).toMatch(/production segments \(live\).*owner.*dataSteward.*securityContact/);
  expect((await stack.api('GET', '/v1/packages')).body.packages).toEqual([]);

  // A malformed contact is refused already when packing (the manifest schema).
  await expect(publish('fake-live-bot', '1.0.0', { segments: ['live'], contacts: { ...CONTACTS, owner: '=cmd|calc' } })).rejects.toMatchObject({
    code: 'ORDERLY_E_MANIFEST_INVALID',
  });
  expect((await publish('fake-live-bot', '1.0.0', { segments: ['demo', 'live'], contacts: CONTACTS })).status).toBe(201);
  expect((await publish('fake-demo-bot', '1.0.0', { segments: ['demo'] })).status).toBe(201);
});

test('the inventory lists each bot with contacts, PHI, hosts, credentials, segments, schedules and last run; auditors read it, operators not', async () => {
  // A schedule and a finished run of the production bot (rows as the scheduler and a runner leave them).
  await pg.query(
    `INSERT INTO schedules (id, name, bot_name, segment, input_sealed, cron, created_by) VALUES (gen_random_uuid(), 'fake-nightly', 'fake-live-bot', 'live', '{}', '0 2 * * *', 'admin')`,
  );
  const digest = (await pg.query<{ digest: string }>("SELECT digest FROM packages WHERE name = 'fake-live-bot'")).rows[0]!.digest;
  const runId = (
    await pg.query<{ id: string }>(
      `INSERT INTO runs (id, idempotency_key, request_mac, bot_name, bot_version, digest, segment, status, input_sealed, max_attempts, created_at, finished_at)
    VALUES (gen_random_uuid(), 'fake-inventory-1', 'mac', 'fake-live-bot', '1.0.0', $1, 'live', 'succeeded', '{}', 1, now() - interval '1 hour', now() - interval '59 minutes') RETURNING id`,
      [digest],
    )
  ).rows[0]!.id;

  const auditor = await createUser(stack, 'fake-inventory-auditor', ['auditor']);
  const res = await stack.api('GET', '/v1/compliance/inventory', undefined, auditor.token);
  expect(res.status).toBe(200);
  const inventory = BotInventoryView.parse(res.body);
  expect(inventory.bots.map((b) => b.name)).toEqual(['fake-demo-bot', 'fake-live-bot']);
  const live = inventory.bots.find((b) => b.name === 'fake-live-bot')!;
  expect(live).toMatchObject({
    version: '1.0.0',
    digest,
    contacts: CONTACTS,
    phi: ['memberId'],
    hosts: ['portal.example.test'],
    credentials: [],
    segments: ['demo', 'live'],
    productionSegments: ['live'],
    schedules: [{ name: 'fake-nightly', segment: 'live', cron: '0 2 * * *', everySeconds: null, paused: false, lastFiredAt: null, version: null }],
    lastRun: { id: runId, version: '1.0.0', segment: 'live', status: 'succeeded' },
  });
  expect(inventory.bots.find((b) => b.name === 'fake-demo-bot')).toMatchObject({ contacts: null, productionSegments: [], schedules: [], lastRun: null });
  const operator = await createUser(stack, 'fake-inventory-operator', ['operator']);
  expect((await stack.api('GET', '/v1/compliance/inventory', undefined, operator.token)).status).toBe(403);

  // The CLI: JSON as the API answers it, CSV with a header and one quoted row per bot, a table line per bot.
  expect(BotInventoryView.parse(JSON.parse(await orderly('bot', 'inventory', '--json'))).bots).toEqual(inventory.bots);
  const csv = (await orderly('bot', 'inventory', '--csv')).split('\r\n');
  expect(csv[0]).toBe(
    'bot,team,version,digest,published_at,owner,data_steward,security_contact,phi_fields,hosts,credentials,segments,production_segments,schedules,last_run_at,last_run_status,last_run_segment',
  );
  expect(csv.slice(1, 3).map((line) => line.split(',')[0])).toEqual(['fake-demo-bot', 'fake-live-bot']);
  expect(csv[2]).toContain(
    ',Fake Owner <owner@example.test>,Fake Steward,fake-security@example.test,memberId,portal.example.test,,demo;live,live,"fake-nightly (live, cron 0 2 * * *)",',
  );
  expect(csv[2]).toMatch(/,succeeded,live$/);
  expect(await orderly('bot', 'inventory')).toMatch(
    /^fake-live-bot@1\.0\.0 {2}team harness-team {2}owner Fake Owner <owner@example\.test>, steward Fake Steward, .* last run succeeded at .* in live$/m,
  );
});

test('inventory.contacts fails while a production bot has no contacts and passes once its latest version names them; the report keeps the inventory', async () => {
  expect(resultOf(await check(), 'inventory.contacts')?.result).toBe('pass');
  // A version stored before the rule (or before `live` became a production segment): no contacts.
  const keyId = (await pg.query<{ key_id: string }>('SELECT key_id FROM publisher_keys LIMIT 1')).rows[0]!.key_id;
  await pg.query(
    `INSERT INTO packages (digest, name, version, publisher_key_id, manifest, envelope, size, created_at)
    VALUES ('sha256:fake-legacy', 'fake-legacy-bot', '0.9.0', $1, $2, '{}', 1, now() - interval '1 day')`,
    [keyId, JSON.stringify({ name: 'fake-legacy-bot', version: '0.9.0', segments: ['live'], phi: [], hosts: [], credentials: ['portal_password'] })],
  );
  let report = await check();
  expect(resultOf(report, 'inventory.contacts')).toMatchObject({
    result: 'fail',
    controlId: '164.308(a)(2)',
    observed: expect.stringContaining('fake-legacy-bot'),
  });
  expect(report.inventory?.bots.find((b) => b.name === 'fake-legacy-bot')).toMatchObject({
    contacts: null,
    credentials: ['portal_password'],
    productionSegments: ['live'],
  });

  // A name from before owners is assigned by the security team before anyone publishes it again.
  expect((await stack.api('POST', '/v1/bots/fake-legacy-bot/transfer', { team: 'harness-team' })).status).toBe(200);
  expect((await publish('fake-legacy-bot', '1.0.0', { segments: ['live'], contacts: CONTACTS })).status).toBe(201);
  report = await check();
  expect(resultOf(report, 'inventory.contacts')?.result).toBe('pass');
  expect(report.inventory?.bots.find((b) => b.name === 'fake-legacy-bot')).toMatchObject({ version: '1.0.0', contacts: CONTACTS });
});

test("a screenshot purge on the stack's database is listed by GET /v1/compliance/disposals and `orderly compliance disposals`", async () => {
  const digest = (await pg.query<{ digest: string }>("SELECT digest FROM packages WHERE name = 'fake-demo-bot'")).rows[0]!.digest;
  const runId = (
    await pg.query<{ id: string }>(
      `INSERT INTO runs (id, idempotency_key, request_mac, bot_name, bot_version, digest, segment, status, input_sealed, max_attempts)
    VALUES (gen_random_uuid(), 'fake-disposal-1', 'mac', 'fake-demo-bot', '1.0.0', $1, 'demo', 'succeeded', '{}', 1) RETURNING id`,
      [digest],
    )
  ).rows[0]!.id;
  const daysAgo = (d: number) => new Date(Date.now() - d * 24 * 3600 * 1000).toISOString();
  const [oldest, newest] = [daysAgo(40), daysAgo(35)];
  await pg.query(
    `INSERT INTO run_screenshots (run_id, attempt, name, png_sealed, bytes, created_at, expires_at)
    VALUES ($1, 1, 'fake-1', '{}', 10, $2, $3), ($1, 1, 'fake-2', '{}', 10, $4, $5), ($1, 1, 'fake-live', '{}', 10, now(), now() + interval '30 days')`,
    [runId, oldest, daysAgo(10), newest, daysAgo(5)],
  );
  // This purge, or the control room's own 30 s sweep if it came first: one record either way.
  await new Retention({ db, audit: new AuditLog(db), screenshotRetentionDays: 30, auditRetentionDays: 2555 }).purgeScreenshots();
  expect((await pg.query('SELECT name FROM run_screenshots WHERE run_id = $1', [runId])).rows).toEqual([{ name: 'fake-live' }]);

  const res = await stack.api('GET', '/v1/compliance/disposals?kind=screenshots');
  expect(res.status).toBe(200);
  const { disposals } = DisposalListView.parse(res.body);
  expect(disposals).toEqual([
    expect.objectContaining({
      kind: 'screenshots',
      count: 2,
      rangeStart: oldest,
      rangeEnd: newest,
      policy: 'expired (ORDERLY_SCREENSHOT_RETENTION_DAYS=30)',
      actor: 'control-room',
    }),
  ]);
  expect((await stack.api('GET', '/v1/compliance/disposals?kind=coffee')).body.error.code).toBe('ORDERLY_E_BAD_REQUEST');
  const auditor = await createUser(stack, 'fake-disposal-auditor', ['auditor']);
  expect((await stack.api('GET', '/v1/compliance/disposals', undefined, auditor.token)).status).toBe(200);
  expect(DisposalListView.parse({ disposals: JSON.parse(await orderly('compliance', 'disposals', '--json')) }).disposals).toEqual(disposals);
  expect(await orderly('compliance', 'disposals', '--kind', 'screenshots')).toMatch(/ screenshots +2 {2}from /);
  expect(await orderly('compliance', 'disposals')).toContain(`from ${oldest} to ${newest}  expired (ORDERLY_SCREENSHOT_RETENTION_DAYS=30)  by control-room`);
});
