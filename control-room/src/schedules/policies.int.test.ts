import { Client } from 'pg';
import { RunView } from '@orderly/shared';
import { waitFor } from '@orderly/shared/testing';
import { Stack, startStack } from '../../../test/harness';
import { buildProgram } from '../cli/main';
import { isoWeekday, localDate } from './zoned';

/**
 * Time zones, calendars, overlap and misfire against real PostgreSQL and Redis, with the control
 * room as a child process so that an outage is a real one (SIGKILL, down for a while, started
 * again). No runner: the runs schedules create stay waiting, which is what "still going" means
 * for the overlap policies. A tick more than 2 s late is a misfire here (60 s by default).
 */
const MEMBER = { memberId: 'ZZS500600702', dateOfBirth: '1900-04-30' };
let stack: Stack;
let db: Client;
let input: Record<string, string>;

beforeAll(async () => {
  stack = await startStack({
    controlRoomProcess: true,
    controlRoomEnv: { ORDERLY_SCHEDULE_MIN_INTERVAL_SECONDS: '1', ORDERLY_SCHEDULE_MISFIRE_GRACE_SECONDS: '2' },
  });
  await stack.publish();
  input = { portalUrl: stack.portal.url, ...MEMBER };
  db = new Client({ connectionString: stack.databaseUrl });
  await db.connect();
}, 90_000);
afterAll(async () => {
  await db?.end();
  await stack?.close();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function createSchedule(body: Record<string, unknown>): Promise<{ id: string; nextFireAt: string | null } & Record<string, unknown>> {
  const res = await stack.api('POST', '/v1/schedules', { bot: 'eligibility-check', input, ...body });
  if (res.status !== 201) throw new Error(`create schedule failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

async function runsOf(scheduleId: string): Promise<RunView[]> {
  const runs = (await stack.api('GET', '/v1/runs?limit=500')).body.runs as RunView[];
  return runs.filter((r) => r.idempotencyKey.startsWith(`schedule-${scheduleId}-`)).sort((a, b) => a.idempotencyKey.localeCompare(b.idempotencyKey));
}
const fireTimeOfRun = (run: RunView) => Number(run.idempotencyKey.split('-').at(-1));

interface Rec {
  fireTime: string;
  reason: string;
  handling: string;
  runId: string | null;
}
const recordsOf = async (scheduleId: string): Promise<Rec[]> => (await stack.api('GET', `/v1/schedules/${scheduleId}/fire-records`)).body.records;

async function auditEvents(action: string, target: string): Promise<{ actor: string; details: Record<string, unknown> }[]> {
  return (await db.query('SELECT actor, details FROM audit_events WHERE action = $1 AND target = $2 ORDER BY seq', [action, target])).rows;
}

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

test('a cron schedule in a zone is scheduled by the control room rules across DST changes; next shows zone and UTC', async () => {
  // 02:30 on 2027-03-14 does not exist in New York: the scheduler itself (BullMQ, given the
  // control room's strategy) holds 03:00 EDT, not BullMQ's default 03:30.
  const spring = await createSchedule({ name: 'ny-spring', cron: '30 2 14 3 *', timeZone: 'America/New_York' });
  expect(spring).toMatchObject({ timeZone: 'America/New_York', overlap: 'allow', misfire: 'run_once', calendar: null });
  expect(spring.nextFireAt).toBe('2027-03-14T07:00:00.000Z');
  const fall = await createSchedule({ name: 'ny-fall', cron: '30 1 7 11 *', timeZone: 'America/New_York' });
  expect(fall.nextFireAt).toBe('2027-11-07T05:30:00.000Z'); // 01:30 EDT, the first of the two
  const berlin = await createSchedule({ name: 'berlin-weekdays', cron: '0 9 * * 1-5', timeZone: 'Europe/Berlin' });
  const next = (await stack.api('GET', `/v1/schedules/${berlin.id}/next?count=3`)).body as { timeZone: string; fires: { local: string; utc: string }[] };
  expect(next.timeZone).toBe('Europe/Berlin');
  for (const fire of next.fires) {
    expect(fire.local).toMatch(/T09:00:00\+0[12]:00$/);
    expect(new Date(fire.utc).getTime()).toBe(new Date(fire.local).getTime());
  }
  const printed = await orderly('schedule', 'next', 'ny-spring', '--count', '2');
  expect(printed).toContain('2027-03-14T03:00:00-04:00');
  expect(printed).toContain('2027-03-14T07:00:00.000Z');
  expect(printed).toContain('2028-03-14T02:30:00-04:00'); // after the change the time exists again
  const json = JSON.parse(await orderly('schedule', 'next', 'ny-fall', '--count', '1', '--json'));
  expect(json.fires).toEqual([{ local: '2027-11-07T01:30:00-04:00', utc: '2027-11-07T05:30:00.000Z' }]);
  for (const name of ['ny-spring', 'ny-fall', 'berlin-weekdays']) await stack.api('DELETE', `/v1/schedules/${name}`);
}, 60_000);

test('bad zones, calendars and cron patterns are refused with their codes', async () => {
  const cases: [Record<string, unknown>, number, string][] = [
    [{ name: 'bad-zone', cron: '0 9 * * *', timeZone: 'Mars/Olympus' }, 400, 'ORDERLY_E_TIME_ZONE_UNKNOWN'],
    [{ name: 'bad-calendar', cron: '0 9 * * *', calendar: 'no-such-calendar' }, 400, 'ORDERLY_E_CALENDAR_UNKNOWN'],
    [{ name: 'bad-cron', cron: '61 25 * * *' }, 400, 'ORDERLY_E_SCHEDULE_INVALID'],
    [{ name: 'bad-policy', cron: '0 9 * * *', overlap: 'sometimes' }, 400, 'ORDERLY_E_BAD_REQUEST'],
    [{ name: 'orphan-policy', cron: '0 9 * * *', calendarPolicy: 'skip' }, 400, 'ORDERLY_E_SCHEDULE_INVALID'],
  ];
  for (const [body, status, code] of cases) {
    const res = await stack.api('POST', '/v1/schedules', { bot: 'eligibility-check', input, ...body });
    expect({ name: body.name, status: res.status, code: res.body.error?.code }).toEqual({ name: body.name, status, code });
  }
  const badCal = await stack.api('PUT', '/v1/calendars/bad', {
    timeZone: 'Europe/Berlin',
    ics: 'BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:2026\r\nEND:VEVENT\r\nEND:VCALENDAR',
  });
  expect([badCal.status, badCal.body.error?.code]).toEqual([400, 'ORDERLY_E_CALENDAR_INVALID']);
  const badZone = await stack.api('PUT', '/v1/calendars/bad', { timeZone: 'Nowhere/Land' });
  expect([badZone.status, badZone.body.error?.code]).toEqual([400, 'ORDERLY_E_TIME_ZONE_UNKNOWN']);
  const notFound = await stack.api('GET', '/v1/schedules/no-such-schedule/next');
  expect(notFound.status).toBe(404);
}, 30_000);

test('a holiday from an imported iCalendar file is skipped by the scheduler, or moved to the next working day', async () => {
  // Today (in the calendar's zone) is a holiday, imported from an iCalendar file with a folded line.
  const zone = 'Pacific/Auckland';
  const today = localDate(zone, Date.now());
  const ics = [
    'BEGIN:VCALENDAR',
    'VERSION:2.0',
    'BEGIN:VEVENT',
    'UID:t@example.test',
    `DTSTART;VALUE=DATE:${today.replaceAll('-', '').slice(0, 4)}`,
    ` ${today.replaceAll('-', '').slice(4)}`,
    'SUMMARY:Synthetic holiday',
    'END:VEVENT',
    'END:VCALENDAR',
    '',
  ].join('\r\n');
  const cal = await stack.api('PUT', '/v1/calendars/all-week-nz', { timeZone: zone, workingDays: [1, 2, 3, 4, 5, 6, 7], ics });
  expect(cal.status).toBe(200);
  expect(cal.body).toMatchObject({ name: 'all-week-nz', timeZone: zone, workingDays: [1, 2, 3, 4, 5, 6, 7], holidays: [today] });

  // Every second, but not today: nothing fires, and the scheduler's next fire is tomorrow 00:00 there.
  const skipping = await createSchedule({ name: 'holiday-skip', cron: '* * * * * *', timeZone: zone, calendar: 'all-week-nz', calendarPolicy: 'skip' });
  expect(localDate(zone, Date.parse(skipping.nextFireAt!))).not.toBe(today);
  expect(new Date(skipping.nextFireAt!).toLocaleTimeString('en-GB', { timeZone: zone })).toBe('00:00:00');
  await sleep(3000);
  expect(await runsOf(skipping.id)).toEqual([]);
  // Fires only on today's weekday, 00:00:01 local (passed already, today being a holiday): moved,
  // it runs tomorrow at 00:00:01; skipped, not before the same weekday next week.
  const weekday = isoWeekday(today) % 7;
  const tomorrow = new Date(Date.parse(`${today}T00:00:00Z`) + 86_400_000).toISOString().slice(0, 10);
  const nextWeek = new Date(Date.parse(`${today}T00:00:00Z`) + 7 * 86_400_000).toISOString().slice(0, 10);
  const moving = await createSchedule({
    name: 'holiday-move',
    cron: `1 0 0 * * ${weekday}`,
    timeZone: zone,
    calendar: 'all-week-nz',
    calendarPolicy: 'next_working_day',
  });
  expect(new Date(moving.nextFireAt!).toLocaleTimeString('en-GB', { timeZone: zone })).toBe('00:00:01');
  expect(localDate(zone, Date.parse(moving.nextFireAt!))).toBe(tomorrow);
  const weekly = await createSchedule({
    name: 'holiday-weekly-skip',
    cron: `1 0 0 * * ${weekday}`,
    timeZone: zone,
    calendar: 'all-week-nz',
    calendarPolicy: 'skip',
  });
  expect(localDate(zone, Date.parse(weekly.nextFireAt!))).toBe(nextWeek);
  expect(await orderly('schedule', 'show', 'holiday-move')).toContain('calendar all-week-nz (non-working days move to the next working day)');
  // In use: not deleted.
  const del = await stack.api('DELETE', '/v1/calendars/all-week-nz');
  expect([del.status, del.body.error?.code]).toEqual([409, 'ORDERLY_E_CALENDAR_IN_USE']);
  for (const name of ['holiday-skip', 'holiday-move', 'holiday-weekly-skip']) await stack.api('DELETE', `/v1/schedules/${name}`);
  expect((await stack.api('DELETE', '/v1/calendars/all-week-nz')).status).toBe(200);
  expect((await auditEvents('calendar.put', 'calendar:all-week-nz')).length).toBe(1);
}, 60_000);

test('overlap skip: while the first run is still waiting, later fires make no run and are recorded', async () => {
  const schedule = await createSchedule({ name: 'overlap-skip', everySeconds: 1, overlap: 'skip' });
  const records = await waitFor(
    async () => {
      const found = (await recordsOf(schedule.id)).filter((r) => r.reason === 'overlap');
      return found.length >= 3 ? found : undefined;
    },
    15_000,
    'three skipped fires',
  );
  await stack.api('POST', `/v1/schedules/${schedule.id}/pause`);
  expect(records.every((r) => r.handling === 'skipped' && r.runId === null)).toBe(true);
  const runs = await runsOf(schedule.id);
  expect(runs).toHaveLength(1);
  for (const r of records) expect(new Date(r.fireTime).getTime()).toBeGreaterThan(fireTimeOfRun(runs[0]!));
  const audited = await auditEvents('schedule.fire_skipped', `schedule:${schedule.id}`);
  expect(audited.length).toBeGreaterThanOrEqual(3);
  expect(audited[0]).toMatchObject({ actor: `schedule:${schedule.id}`, details: { reason: 'overlap', policy: 'skip', activeRunId: runs[0]!.id } });
}, 50_000);

test('overlap allow: every fire makes its run while earlier ones still wait', async () => {
  const schedule = await createSchedule({ name: 'overlap-allow', everySeconds: 1, overlap: 'allow' });
  await waitFor(async () => ((await runsOf(schedule.id)).length >= 3 ? true : undefined), 15_000, 'three runs');
  await stack.api('POST', `/v1/schedules/${schedule.id}/pause`);
  expect(await recordsOf(schedule.id)).toEqual([]);
}, 50_000);

test('overlap queue_one: one fire waits (later ones replace it) and runs once the previous run has ended', async () => {
  const schedule = await createSchedule({ name: 'overlap-queue', everySeconds: 1, overlap: 'queue_one' });
  await waitFor(
    async () => ((await recordsOf(schedule.id)).filter((r) => r.handling === 'replaced').length >= 2 ? true : undefined),
    15_000,
    'queued fires replaced',
  );
  const shown = (await stack.api('GET', `/v1/schedules/${schedule.id}`)).body;
  expect(shown.queuedFireAt).not.toBeNull();
  const [first, ...others] = await runsOf(schedule.id);
  expect(others).toEqual([]);
  // At most one fire waits at any time.
  expect((await recordsOf(schedule.id)).filter((r) => r.handling === 'queued').length).toBeLessThanOrEqual(1);

  // The first run ends (cancelled): the queued fire gets its run, recorded as ran.
  expect((await stack.api('POST', `/v1/runs/${first!.id}/cancel`)).status).toBe(200);
  const ran = await waitFor(async () => (await recordsOf(schedule.id)).find((r) => r.handling === 'ran'), 15_000, 'the queued fire ran');
  await stack.api('POST', `/v1/schedules/${schedule.id}/pause`);
  const runs = await runsOf(schedule.id);
  const queuedRun = runs.find((r) => r.id === ran.runId);
  expect(queuedRun).toBeDefined();
  expect(fireTimeOfRun(queuedRun!)).toBe(new Date(ran.fireTime).getTime());
  // Never two of the schedule's runs waiting at once.
  expect(runs.filter((r) => r.status === 'waiting').length).toBeLessThanOrEqual(1);
  expect((await auditEvents('schedule.fire_queued', `schedule:${schedule.id}`)).length).toBeGreaterThanOrEqual(1);
}, 60_000);

test('a control-room outage: missed fires are recorded and audited, and run once or not at all as configured', async () => {
  const once = await createSchedule({ name: 'misfire-once', cron: '* * * * * *', timeZone: 'Asia/Tokyo', misfire: 'run_once' });
  const skip = await createSchedule({ name: 'misfire-skip', cron: '* * * * * *', timeZone: 'Asia/Tokyo', misfire: 'skip' });
  for (const s of [once, skip]) await waitFor(async () => ((await runsOf(s.id)).length >= 1 ? true : undefined), 15_000, 'a fire before the outage');

  await stack.controlRoomProcess!.kill();
  const downAt = Date.now();
  await sleep(6000);
  const upAt = Date.now();
  await stack.controlRoomProcess!.start();

  const [onceAudit] = await waitFor(
    async () => {
      const found = await auditEvents('schedule.misfire', `schedule:${once.id}`);
      return found.length > 0 ? found : undefined;
    },
    30_000,
    'the misfire of misfire-once audited',
  );
  const [skipAudit] = await waitFor(
    async () => {
      const found = await auditEvents('schedule.misfire', `schedule:${skip.id}`);
      return found.length > 0 ? found : undefined;
    },
    30_000,
    'the misfire of misfire-skip audited',
  );
  for (const s of [once, skip]) await stack.api('POST', `/v1/schedules/${s.id}/pause`);

  // run_once: the first missed fire ran, standing for all; the others are recorded as skipped.
  const onceRecords = (await recordsOf(once.id)).filter((r) => r.reason === 'misfire');
  expect(onceRecords.length).toBeGreaterThanOrEqual(5); // a fire a second, down for at least 6 s
  expect(onceAudit!.details).toMatchObject({ reason: 'misfire', policy: 'run_once', missed: onceRecords.length });
  const ran = onceRecords.filter((r) => r.handling === 'ran');
  expect(ran).toHaveLength(1);
  expect(onceRecords.filter((r) => r.handling === 'skipped').every((r) => r.runId === ran[0]!.runId)).toBe(true);
  const firstMissed = Math.min(...onceRecords.map((r) => new Date(r.fireTime).getTime()));
  expect(new Date(ran[0]!.fireTime).getTime()).toBe(firstMissed);
  expect(firstMissed).toBeGreaterThanOrEqual(downAt - 1000);
  const onceRuns = await runsOf(once.id);
  const duringOutage = onceRuns.filter((r) => fireTimeOfRun(r) >= firstMissed && fireTimeOfRun(r) <= upAt);
  expect(duringOutage.map((r) => r.id)).toEqual([ran[0]!.runId]);

  // skip: every missed fire recorded, none ran.
  const skipRecords = (await recordsOf(skip.id)).filter((r) => r.reason === 'misfire');
  expect(skipRecords.length).toBeGreaterThanOrEqual(5);
  expect(skipRecords.every((r) => r.handling === 'skipped' && r.runId === null)).toBe(true);
  expect(skipAudit!.details).toMatchObject({ reason: 'misfire', policy: 'skip', missed: skipRecords.length, runId: null });
  const skipFirst = Math.min(...skipRecords.map((r) => new Date(r.fireTime).getTime()));
  expect((await runsOf(skip.id)).filter((r) => fireTimeOfRun(r) >= skipFirst && fireTimeOfRun(r) <= upAt)).toEqual([]);
  expect(await orderly('schedule', 'missed', 'misfire-skip')).toMatch(/misfire\s+skipped/);
}, 120_000);
