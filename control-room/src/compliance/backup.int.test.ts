import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { TEST_PG_ADMIN_URL } from '@orderly/shared/testing';
import { REPO, Stack, startStack } from '../../../test/harness';

/** Backup, delete the database, restore: runs, packages and the audit chain are back and verify. */
let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ vault: false });
}, 120_000);
afterAll(() => stack?.close());

const CLI = join(REPO, 'control-room', 'bin', 'orderly.js');
/** Runs the built CLI as a process (async: the control room under test lives in this process). */
const cli = (args: string[], env: Record<string, string> = {}) =>
  new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      {
        env: {
          PATH: process.env.PATH ?? '',
          HOME: stack.dataDir,
          ORDERLY_DATA_DIR: stack.dataDir,
          DATABASE_URL: stack.databaseUrl!,
          ORDERLY_URL: stack.controlRoom.url,
          ORDERLY_TOKEN: stack.adminToken,
          ...env,
        },
        encoding: 'utf8',
        timeout: 60_000,
        maxBuffer: 16 * 1024 * 1024,
      },
      (err, stdout, stderr) => resolve({ status: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
    );
  });

async function recreateDatabase(url: string): Promise<void> {
  const name = new URL(url).pathname.slice(1);
  const admin = new Client({ connectionString: TEST_PG_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE ${name} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
}

test('backup create, drop the database, a tampered archive is refused, restore, audit verify passes', async () => {
  await stack.publish(join(REPO, 'test', 'fixtures', 'bots', 'no-browser'));
  const runIds = [(await stack.startRun({ bot: 'no-browser', input: {} })).id, (await stack.startRun({ bot: 'no-browser', input: {} })).id];
  const archive = join(stack.dataDir, 'backup.orderly');
  const keyFile = join(stack.dataDir, 'backup.key');

  const created = await cli(['backup', 'create', '--out', archive, '--key-file', keyFile, '--json']);
  expect(created.stderr).toContain('created backup key');
  expect(created.status).toBe(0);
  const manifest = JSON.parse(created.stdout);
  expect(manifest.counts.runs).toBe(2);
  expect(manifest.packages).toHaveLength(1);
  expect(manifest.database.sha256).toMatch(/^[0-9a-f]{64}$/);
  // The archive is sealed: no manifest, table name or bot name in the clear.
  const bytes = readFileSync(archive);
  expect(bytes.includes(Buffer.from('no-browser'))).toBe(false);
  expect(bytes.includes(Buffer.from('audit_events'))).toBe(false);
  const packagesBefore = (await stack.api('GET', '/v1/packages')).body;

  // A drill restores into a scratch database, verifies the chain there and records evidence here.
  const drillCheck = async () =>
    ((await stack.api('GET', '/v1/compliance')).body.results as { checkId: string; result: string }[]).find((r) => r.checkId === 'contingency.restore-drill')
      ?.result;
  expect(await drillCheck()).toBe('fail');
  const drill = await cli(['backup', 'drill', archive, '--key-file', keyFile, '--json']);
  expect(drill.stderr).toBe('');
  expect(drill.status).toBe(0);
  expect(JSON.parse(drill.stdout).audit).toMatchObject({ ok: true });
  expect(await drillCheck()).toBe('pass');

  await stack.controlRoom.close();
  await recreateDatabase(stack.databaseUrl!);

  // One flipped byte anywhere past the header: refused, and nothing is written.
  const tampered = join(stack.dataDir, 'tampered.orderly');
  const copy = Buffer.from(bytes);
  copy[copy.length - 100] = copy[copy.length - 100]! ^ 0x01;
  writeFileSync(tampered, copy);
  const refused = await cli(['backup', 'restore', tampered, '--key-file', keyFile]);
  expect(refused.status).not.toBe(0);
  expect(refused.stderr).toContain('ORDERLY_E_BACKUP_TAMPERED');
  const otherKey = join(stack.dataDir, 'other.key');
  writeFileSync(otherKey, Buffer.alloc(32, 7).toString('base64'));
  expect((await cli(['backup', 'restore', archive, '--key-file', otherKey])).stderr).toContain('ORDERLY_E_BACKUP_WRONG_KEY');
  const pg = new Client({ connectionString: stack.databaseUrl });
  await pg.connect();
  expect(Number((await pg.query("SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public'")).rows[0].n)).toBe(0);
  await pg.end();

  const restored = await cli(['backup', 'restore', archive, '--key-file', keyFile, '--json']);
  expect(restored.stderr).toBe('');
  expect(restored.status).toBe(0);
  // Only into an empty database.
  expect((await cli(['backup', 'restore', archive, '--key-file', keyFile])).stderr).toContain('ORDERLY_E_BACKUP_TARGET_NOT_EMPTY');

  await stack.restartControlRoom();
  for (const id of runIds) expect((await stack.api('GET', `/v1/runs/${id}`)).body).toMatchObject({ id, bot: 'no-browser' });
  expect((await stack.api('GET', '/v1/packages')).body).toEqual(packagesBefore);
  const verify = await cli(['audit', 'verify'], { ORDERLY_URL: stack.controlRoom.url });
  expect(verify.stderr).toBe('');
  expect(verify.status).toBe(0);
  // The restored chain verifies inside the control room's own check too (the backup's evidence row
  // was written after the dump, so it is not part of what was restored).
  const report = (await stack.api('GET', '/v1/compliance')).body;
  expect(report.results.find((r: { checkId: string }) => r.checkId === 'audit.chain-verifies').result).toBe('pass');
}, 180_000);
