import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { Client } from 'pg';
import { createLogger, RunView } from '@orderly/shared';
import { TEST_REDIS_URL, waitFor } from '@orderly/shared/testing';
import { createUser, Stack, startStack } from '../../../test/harness';
import { buildProgram } from '../cli/main';
import { SCHEDULES_QUEUE } from './scheduler-queue';
import { ScheduleView } from '@orderly/shared';
import { handleTick } from './ticks';

/**
 * Schedules against real PostgreSQL and Redis (no runner: the runs they create stay waiting).
 * The stack allows 1-second intervals so the tests see several fires in a few seconds.
 */
const MEMBER = { memberId: 'ZZS500600701', dateOfBirth: '1900-03-31' };
let stack: Stack;
let queue: Queue;
let db: Client;
let input: Record<string, string>;

beforeAll(async () => {
  stack = await startStack({ controlRoomEnv: { ORDERLY_SCHEDULE_MIN_INTERVAL_SECONDS: '1' } });
  await stack.publish();
  input = { portalUrl: stack.portal.url, ...MEMBER };
  queue = new Queue(SCHEDULES_QUEUE, { connection: { url: TEST_REDIS_URL }, prefix: stack.prefix });
  db = new Client({ connectionString: stack.databaseUrl });
  await db.connect();
}, 60_000);
afterAll(async () => {
  await db?.end();
  await queue?.close();
  await stack?.close();
});

const testLog = createLogger({ level: 'silent', name: 'schedules-test' });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function createSchedule(body: Record<string, unknown>, token?: string): Promise<ScheduleView> {
  const res = await stack.api('POST', '/v1/schedules', { bot: 'eligibility-check', input, ...body }, token);
  if (res.status !== 201) throw new Error(`create schedule failed: ${res.status} ${JSON.stringify(res.body)}`);
  return ScheduleView.parse(res.body);
}

/** The runs a schedule created, oldest fire first. */
async function runsOf(scheduleId: string): Promise<RunView[]> {
  const runs = (await stack.api('GET', '/v1/runs?limit=500')).body.runs as RunView[];
  return runs.filter((r) => r.idempotencyKey.startsWith(`schedule-${scheduleId}-`)).sort((a, b) => a.idempotencyKey.localeCompare(b.idempotencyKey));
}

const fireTimeOfRun = (run: RunView) => Number(run.idempotencyKey.split('-').at(-1));

async function auditEvents(action: string, target: string): Promise<{ actor: string; outcome: string; details: Record<string, unknown> }[]> {
  return (await db.query('SELECT actor, outcome, details FROM audit_events WHERE action = $1 AND target = $2 ORDER BY seq', [action, target])).rows;
}

test('an every-second schedule creates runs keyed by schedule and fire time; reads never show the input', async () => {
  const schedule = await createSchedule({ name: 'every-second', everySeconds: 1 });
  expect(schedule).toMatchObject({
    name: 'every-second',
    bot: 'eligibility-check',
    version: null,
    segment: 'demo',
    everySeconds: 1,
    cron: null,
    paused: false,
    createdBy: 'admin',
  });
  const runs = await waitFor(
    async () => {
      const found = await runsOf(schedule.id);
      return found.length >= 3 ? found : undefined;
    },
    10_000,
    'three scheduled runs',
  );
  for (const run of runs) {
    expect(run.idempotencyKey).toMatch(new RegExp(`^schedule-${schedule.id}-\\d{13}$`));
    expect(run).toMatchObject({ bot: 'eligibility-check', segment: 'demo', status: 'waiting' });
  }
  // One run per fire, the fires a second apart (BullMQ's scheduled times, not processing times).
  const fires = runs.map(fireTimeOfRun);
  expect(new Set(fires).size).toBe(fires.length);
  for (let i = 1; i < fires.length; i++) expect((fires[i]! - fires[i - 1]!) % 1000).toBe(0);

  const shown = await stack.api('GET', `/v1/schedules/${schedule.id}`);
  expect(shown.status).toBe(200);
  expect(shown.body).toMatchObject({ id: schedule.id, lastErrorCode: null });
  expect(shown.body.lastFiredAt).not.toBeNull();
  expect(shown.body.nextFireAt).not.toBeNull();
  const byName = await stack.api('GET', '/v1/schedules/every-second');
  expect(byName.body.id).toBe(schedule.id);
  const listed = await stack.api('GET', '/v1/schedules');
  for (const text of [JSON.stringify(shown.body), JSON.stringify(listed.body)]) {
    expect(text).not.toContain(MEMBER.memberId);
    expect(text).not.toContain(MEMBER.dateOfBirth);
    expect(text).not.toContain('input');
  }
  // Sealed at rest, and the scheduler's tick carries the schedule id only.
  const row = (await db.query('SELECT input_sealed::text AS sealed FROM schedules WHERE id = $1', [schedule.id])).rows[0] as { sealed: string };
  expect(row.sealed).not.toContain(MEMBER.memberId);
  const scheduler = await queue.getJobScheduler(schedule.id);
  expect(scheduler?.template?.data).toEqual({ v: 1, scheduleId: schedule.id });
  // Each run created by a fire is audited with the schedule as the actor.
  const fired = await auditEvents('schedule.fire', runs[0]!.id);
  expect(fired).toEqual([expect.objectContaining({ actor: `schedule:${schedule.id}`, outcome: 'success' })]);
  expect(JSON.stringify(fired)).not.toContain(MEMBER.memberId);

  await stack.api('DELETE', `/v1/schedules/${schedule.id}`);
}, 40_000);

test('the same tick delivered twice, or to two control rooms at once, creates one run', async () => {
  const schedule = await createSchedule({ name: 'hourly-dedupe', everySeconds: 3600 });
  // The first fire of an interval schedule is at once: wait for its run.
  const [first] = await waitFor(
    async () => {
      const found = await runsOf(schedule.id);
      return found.length === 1 ? found : undefined;
    },
    10_000,
    'the first fire',
  );
  // The same fire delivered again through the worker's handler: the job id names the fire time.
  const redelivered = { id: `repeat:${schedule.id}:${fireTimeOfRun(first!)}`, data: { v: 1, scheduleId: schedule.id }, attemptsMade: 1, opts: { attempts: 3 } };
  await handleTick(stack.controlRoom.schedules, testLog, redelivered).catch((err: Error) => {
    throw new Error(`redelivered tick failed: ${err.message}`);
  });
  // Another fire processed by two control rooms at the same moment.
  const fireTime = Date.now() + 3_000_000;
  const outcomes = await Promise.all([stack.controlRoom.schedules.fire(schedule.id, fireTime), stack.controlRoom.schedules.fire(schedule.id, fireTime)]);
  expect(outcomes.map((o) => o.kind).sort()).toEqual(['created', 'duplicate']);
  const runs = await runsOf(schedule.id);
  expect(runs.map((r) => r.idempotencyKey)).toEqual([first!.idempotencyKey, `schedule-${schedule.id}-${fireTime}`]);
  // A job that is not a scheduler's tick cannot name a fire: dropped without a run.
  await expect(handleTick(stack.controlRoom.schedules, testLog, { ...redelivered, id: 'forged-1' })).rejects.toThrow(/malformed schedule tick/);
  expect(await runsOf(schedule.id)).toHaveLength(2);
  await stack.api('DELETE', `/v1/schedules/${schedule.id}`);
}, 40_000);

test('pause stops runs, resume restarts them; delete removes the scheduler and no run follows', async () => {
  const schedule = await createSchedule({ name: 'pausable', everySeconds: 1 });
  await waitFor(async () => ((await runsOf(schedule.id)).length >= 1 ? true : undefined), 10_000, 'a first fire');

  const paused = await stack.api('POST', `/v1/schedules/${schedule.id}/pause`);
  expect(paused.status).toBe(200);
  expect(paused.body).toMatchObject({ paused: true, nextFireAt: null });
  expect(await queue.getJobScheduler(schedule.id)).toBeUndefined();
  await sleep(500); // a tick that was already being processed finishes
  const atPause = (await runsOf(schedule.id)).length;
  await sleep(2500);
  expect((await runsOf(schedule.id)).length).toBe(atPause);
  // A tick that was queued before the pause (or a stale scheduler) finds the row paused: no run.
  expect(await stack.controlRoom.schedules.fire(schedule.id, Date.now())).toEqual({ kind: 'skipped', reason: 'paused' });
  expect((await runsOf(schedule.id)).length).toBe(atPause);

  const resumed = await stack.api('POST', `/v1/schedules/pausable/resume`);
  expect(resumed.body).toMatchObject({ paused: false });
  await waitFor(async () => ((await runsOf(schedule.id)).length >= atPause + 2 ? true : undefined), 10_000, 'fires after resume');

  const deleted = await stack.api('DELETE', `/v1/schedules/${schedule.id}`);
  expect(deleted.status).toBe(200);
  expect(await queue.getJobScheduler(schedule.id)).toBeUndefined();
  await sleep(500);
  const atDelete = (await runsOf(schedule.id)).length;
  await sleep(2500);
  expect((await runsOf(schedule.id)).length).toBe(atDelete);
  expect(await stack.controlRoom.schedules.fire(schedule.id, Date.now())).toEqual({ kind: 'skipped', reason: 'deleted' });
  expect((await stack.api('GET', `/v1/schedules/${schedule.id}`)).status).toBe(404);
  // The generic request audit names the schedule by id.
  const audited = await db.query("SELECT action, outcome FROM audit_events WHERE target = $1 AND action LIKE 'schedule.%' ORDER BY seq", [
    `schedule:${schedule.id}`,
  ]);
  expect(audited.rows.map((r: { action: string }) => r.action)).toEqual(['schedule.create', 'schedule.pause', 'schedule.resume', 'schedule.delete']);
}, 60_000);

test('a restart reconciles Redis with the database: a lost scheduler comes back, one without a row goes', async () => {
  const kept = await createSchedule({ name: 'lost-in-redis', cron: '0 6 * * *' });
  const orphan = await createSchedule({ name: 'deleted-behind-its-back', cron: '0 7 * * *' });
  expect(kept.nextFireAt).not.toBeNull();
  // Behind the control room's back: Redis loses one scheduler, the database loses the other row.
  await queue.removeJobScheduler(kept.id);
  await db.query('DELETE FROM schedules WHERE id = $1', [orphan.id]);
  expect(await queue.getJobScheduler(kept.id)).toBeUndefined();
  expect(await queue.getJobScheduler(orphan.id)).toBeDefined();

  await stack.restartControlRoom();
  const back = await queue.getJobScheduler(kept.id);
  expect(back).toMatchObject({ pattern: '0 6 * * *', tz: 'UTC', template: { data: { v: 1, scheduleId: kept.id } } });
  expect(new Date(back!.next!).getUTCHours()).toBe(6);
  expect(await queue.getJobScheduler(orphan.id)).toBeUndefined();
  // A paused schedule's scheduler put back by hand is removed as well.
  await stack.api('POST', `/v1/schedules/${kept.id}/pause`);
  await queue.upsertJobScheduler(kept.id, { pattern: '0 6 * * *', tz: 'UTC' }, { name: 'tick', data: { v: 1, scheduleId: kept.id } });
  expect(await stack.controlRoom.schedules.reconcile()).toEqual({ added: 0, removed: 1 });
  expect(await queue.getJobScheduler(kept.id)).toBeUndefined();
  await stack.api('DELETE', `/v1/schedules/${kept.id}`);
}, 60_000);

test('bad schedules are refused up front with stable codes, and nothing is stored', async () => {
  const count = async () => Number((await db.query('SELECT count(*) AS n FROM schedules')).rows[0].n);
  const before = await count();
  const cases: [string, Record<string, unknown>, number, string][] = [
    ['input failing the bot schema', { name: 'bad-input', everySeconds: 60, input: { ...input, memberId: '!' } }, 400, 'ORDERLY_E_INPUT_INVALID'],
    ['input missing a field', { name: 'bad-input', everySeconds: 60, input: { portalUrl: input.portalUrl } }, 400, 'ORDERLY_E_INPUT_INVALID'],
    ['an unknown bot', { name: 'no-bot', bot: 'no-such-bot', everySeconds: 60 }, 404, 'ORDERLY_E_BOT_UNKNOWN'],
    ['an unknown version', { name: 'no-version', version: '9.9.9', everySeconds: 60 }, 404, 'ORDERLY_E_BOT_UNKNOWN'],
    ['a segment the bot may not run in', { name: 'wrong-segment', segment: 'other', everySeconds: 60 }, 400, 'ORDERLY_E_SEGMENT_UNKNOWN'],
    ['an invalid cron pattern', { name: 'bad-cron', cron: '61 * * * *' }, 400, 'ORDERLY_E_SCHEDULE_INVALID'],
    ['cron and an interval', { name: 'both', cron: '0 6 * * *', everySeconds: 60 }, 400, 'ORDERLY_E_SCHEDULE_INVALID'],
    ['neither cron nor an interval', { name: 'neither' }, 400, 'ORDERLY_E_SCHEDULE_INVALID'],
    ['a zero interval', { name: 'zero', everySeconds: 0 }, 400, 'ORDERLY_E_SCHEDULE_INVALID'],
    ['an interval that is not a number', { name: 'text-interval', everySeconds: '60' }, 400, 'ORDERLY_E_SCHEDULE_INVALID'],
    ['a name with a slash', { name: 'a/b', everySeconds: 60 }, 400, 'ORDERLY_E_SCHEDULE_INVALID'],
    ['a UUID-shaped name', { name: '0b7c2a52-8a5e-4c44-9d1c-3f1e2d4b5a69', everySeconds: 60 }, 400, 'ORDERLY_E_SCHEDULE_INVALID'],
    ['an unknown field', { name: 'extra', everySeconds: 60, extra: 1 }, 400, 'ORDERLY_E_BAD_REQUEST'],
  ];
  for (const [what, body, status, code] of cases) {
    const res = await stack.api('POST', '/v1/schedules', { bot: 'eligibility-check', input, ...body });
    expect({ what, status: res.status, code: res.body?.error?.code }).toEqual({ what, status, code });
    expect(JSON.stringify(res.body)).not.toContain(MEMBER.memberId);
  }
  expect(await count()).toBe(before);
  const first = await createSchedule({ name: 'taken', cron: '0 5 * * *' });
  const again = await stack.api('POST', '/v1/schedules', { bot: 'eligibility-check', input, name: 'taken', cron: '0 5 * * *' });
  expect({ status: again.status, code: again.body.error.code }).toEqual({ status: 409, code: 'ORDERLY_E_SCHEDULE_CONFLICT' });
  await stack.api('DELETE', `/v1/schedules/${first.id}`);
}, 30_000);

test('an operator may create schedules; a developer may read them but not create, pause or delete (403)', async () => {
  const operator = await createUser(stack, 'sched-operator', ['operator']);
  const developer = await createUser(stack, 'sched-developer', ['developer']);
  const created = await createSchedule({ name: 'by-operator', cron: '0 4 * * *' }, operator.token);
  expect(created.createdBy).toBe('user:sched-operator');
  const denied = await stack.api('POST', '/v1/schedules', { bot: 'eligibility-check', input, name: 'by-developer', cron: '0 4 * * *' }, developer.token);
  expect(denied.status).toBe(403);
  expect(denied.body.error).toMatchObject({ code: 'ORDERLY_E_FORBIDDEN', details: { permission: 'schedules.manage' } });
  for (const [method, path] of [
    ['POST', `/v1/schedules/${created.id}/pause`],
    ['DELETE', `/v1/schedules/${created.id}`],
  ] as const) {
    expect((await stack.api(method, path, undefined, developer.token)).status).toBe(403);
  }
  expect((await stack.api('GET', `/v1/schedules/${created.id}`, undefined, developer.token)).body.paused).toBe(false);
  expect((await stack.api('DELETE', `/v1/schedules/${created.id}`, undefined, operator.token)).status).toBe(200);
}, 90_000);

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

test('orderly schedule create|ls|show|pause|resume|rm', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'orderly-schedule-cli-'));
  try {
    const file = join(dir, 'input.json');
    writeFileSync(file, JSON.stringify(input));
    const created = ScheduleView.parse(
      JSON.parse(await orderly('schedule', 'create', 'from-cli', 'eligibility-check', '--input', file, '--cron', '30 5 * * 1-5', '--json')),
    );
    expect(created).toMatchObject({ name: 'from-cli', cron: '30 5 * * 1-5', everySeconds: null, paused: false });
    expect(await orderly('schedule', 'ls')).toMatch(/^from-cli\s+eligibility-check@latest\s+demo\s+cron "30 5 \* \* 1-5" \(UTC\)$/m);
    const shown = await orderly('schedule', 'show', 'from-cli');
    expect(shown).toContain(`schedule from-cli (${created.id})`);
    expect(shown).not.toContain(MEMBER.memberId);
    expect(JSON.parse(await orderly('schedule', 'pause', 'from-cli', '--json'))).toMatchObject({ paused: true, nextFireAt: null });
    expect(JSON.parse(await orderly('schedule', 'resume', created.id, '--json'))).toMatchObject({ paused: false });
    await expect(orderly('schedule', 'create', 'no-timing', 'eligibility-check', '--input', file)).rejects.toMatchObject({
      code: 'ORDERLY_E_SCHEDULE_INVALID',
    });
    expect(await orderly('schedule', 'rm', 'from-cli')).toBe(`deleted schedule from-cli (${created.id})\n`);
    expect(await queue.getJobScheduler(created.id)).toBeUndefined();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 30_000);

// Last: it revokes the publisher key every other test's package is signed with.
test('a fire whose run cannot be created is audited as schedule.fire_failed and not retried', async () => {
  const schedule = await createSchedule({ name: 'doomed', everySeconds: 1 });
  await waitFor(async () => ((await runsOf(schedule.id)).length >= 1 ? true : undefined), 10_000, 'a first fire');
  await stack.api('POST', '/v1/schedules/doomed/pause');
  const keys = (await stack.api('GET', '/v1/keys')).body.keys as { keyId: string; name: string }[];
  const keyId = keys.find((k) => k.name === 'test-publisher')!.keyId;
  expect((await stack.api('POST', `/v1/keys/${encodeURIComponent(keyId)}/revoke`)).status).toBe(200);
  const runsBefore = (await runsOf(schedule.id)).length;

  await stack.api('POST', '/v1/schedules/doomed/resume');
  const failures = await waitFor(
    async () => {
      const events = await auditEvents('schedule.fire_failed', `schedule:${schedule.id}`);
      return events.length >= 2 ? events : undefined;
    },
    10_000,
    'failed fires audited',
  );
  expect(failures[0]).toMatchObject({
    actor: `schedule:${schedule.id}`,
    outcome: 'failure',
    details: { code: 'ORDERLY_E_KEY_REVOKED', bot: 'eligibility-check' },
  });
  await stack.api('POST', '/v1/schedules/doomed/pause');
  expect((await runsOf(schedule.id)).length).toBe(runsBefore);
  expect((await stack.api('GET', '/v1/schedules/doomed')).body.lastErrorCode).toBe('ORDERLY_E_KEY_REVOKED');
  // Given up at once: each failed tick was tried once, not three times.
  const failed = (await queue.getFailed()).filter((j) => j.data.scheduleId === schedule.id);
  expect(failed.length).toBeGreaterThanOrEqual(2);
  expect(failed.every((j) => j.attemptsMade === 1 && j.failedReason === 'ORDERLY_E_KEY_REVOKED')).toBe(true);
  // Every failure is one event per fire: no fire was audited twice.
  const fires = failures.map((f) => f.details.fireTime);
  expect(new Set(fires).size).toBe(fires.length);
}, 50_000);
