import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { OrderlyError } from '@orderly/shared';
import { ApiClient } from '../api-client';
import { readJsonInput } from '../input';
import { output } from '../output';
import { CalendarList, CalendarView, FireRecordList, NextFires, ScheduleList, ScheduleView } from '@orderly/shared';

function when(view: ScheduleView): string {
  const base = view.cron !== null ? `cron "${view.cron}" (${view.timeZone})` : `every ${view.everySeconds} s`;
  return view.calendar
    ? `${base}, calendar ${view.calendar} (${view.calendarPolicy === 'next_working_day' ? 'non-working days move to the next working day' : 'non-working days skipped'})`
    : base;
}

function describe(view: ScheduleView): string[] {
  return [
    `schedule ${view.name} (${view.id})`,
    `  bot        ${view.bot}@${view.version ?? 'latest'}`,
    `  segment    ${view.segment}`,
    `  fires      ${when(view)}${view.paused ? ', paused' : ''}`,
    `  overlap    ${view.overlap}${view.queuedFireAt ? ` (queued fire ${view.queuedFireAt})` : ''}`,
    `  misfire    ${view.misfire}`,
    `  next fire  ${view.nextFireAt ?? '-'}`,
    `  last fire  ${view.lastFiredAt ?? '-'}${view.lastErrorCode ? ` (last failure: ${view.lastErrorCode})` : ''}`,
    `  created    ${view.createdAt} by ${view.createdBy}`,
  ];
}

/** `orderly schedule …`: recurring runs of a bot with a stored (sealed) input. */
export function scheduleCommand(client: () => ApiClient): Command {
  const schedule = new Command('schedule').description('schedule recurring runs (operators)');
  schedule
    .command('create')
    .description('create a schedule NAME that runs BOT with --cron or --every')
    .argument('<name>', 'schedule name: lower-case letters, digits, . _ -')
    .argument('<bot>', 'bot name')
    .option('--input <file>', 'JSON file with the run input (validated now; stored encrypted)')
    .option('--version <version>', 'bot version (default: the latest published at each fire)')
    .option('--segment <segment>', 'segment to run in (default: the first the bot declares)')
    .option('--cron <pattern>', 'cron pattern on the clock of --tz, e.g. "0 6 * * 1-5"')
    .option('--every <seconds>', 'fixed interval in seconds')
    .option('--tz <zone>', 'IANA time zone the cron pattern is read in (default UTC), e.g. America/New_York')
    .option('--calendar <name>', 'business calendar to follow')
    .option('--on-non-working <policy>', 'with --calendar: skip (default) or next_working_day')
    .option('--overlap <policy>', 'a fire while the previous run is going: allow (default), skip or queue_one')
    .option('--misfire <policy>', 'fires missed while the control room was down: run_once (default) or skip')
    .option('--json', 'machine-readable output')
    .action(
      async (
        name: string,
        bot: string,
        opts: {
          input?: string;
          version?: string;
          segment?: string;
          cron?: string;
          every?: string;
          tz?: string;
          calendar?: string;
          onNonWorking?: string;
          overlap?: string;
          misfire?: string;
          json?: boolean;
        },
      ) => {
        if ((opts.cron === undefined) === (opts.every === undefined))
          throw new OrderlyError('ORDERLY_E_SCHEDULE_INVALID', 'give exactly one of --cron and --every');
        const every = opts.every === undefined ? undefined : Number(opts.every);
        if (every !== undefined && !Number.isInteger(every)) throw new OrderlyError('ORDERLY_E_SCHEDULE_INVALID', '--every takes a whole number of seconds');
        const input = readJsonInput(opts.input);
        const view = await client().request('POST', '/v1/schedules', ScheduleView, {
          name,
          bot,
          input,
          ...(opts.version ? { version: opts.version } : {}),
          ...(opts.segment ? { segment: opts.segment } : {}),
          ...(opts.cron !== undefined ? { cron: opts.cron } : { everySeconds: every }),
          ...(opts.tz ? { timeZone: opts.tz } : {}),
          ...(opts.calendar ? { calendar: opts.calendar } : {}),
          ...(opts.onNonWorking ? { calendarPolicy: opts.onNonWorking } : {}),
          ...(opts.overlap ? { overlap: opts.overlap } : {}),
          ...(opts.misfire ? { misfire: opts.misfire } : {}),
        });
        output(opts.json, view, describe(view));
      },
    );
  schedule
    .command('ls')
    .description('list schedules')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const { schedules } = await client().request('GET', '/v1/schedules', ScheduleList);
      output(
        opts.json,
        schedules,
        schedules.length === 0
          ? 'no schedules'
          : schedules.map(
              (s) => `${s.name.padEnd(24)} ${`${s.bot}@${s.version ?? 'latest'}`.padEnd(32)} ${s.segment.padEnd(10)} ${when(s)}${s.paused ? ' paused' : ''}`,
            ),
      );
    });
  for (const [verb, description] of [
    ['show', 'show a schedule (never its input)'],
    ['pause', 'pause a schedule: no runs until resumed'],
    ['resume', 'resume a paused schedule'],
    ['rm', 'delete a schedule'],
  ] as const) {
    schedule
      .command(verb)
      .description(description)
      .argument('<schedule>', 'schedule id or name')
      .option('--json', 'machine-readable output')
      .action(async (ref: string, opts: { json?: boolean }) => {
        const path = `/v1/schedules/${encodeURIComponent(ref)}`;
        const view =
          verb === 'show'
            ? await client().request('GET', path, ScheduleView)
            : verb === 'rm'
              ? await client().request('DELETE', path, ScheduleView)
              : await client().request('POST', `${path}/${verb}`, ScheduleView);
        output(opts.json, view, verb === 'rm' ? `deleted schedule ${view.name} (${view.id})` : describe(view));
      });
  }
  schedule
    .command('next')
    .description('show the next fires of a schedule, in its time zone and in UTC')
    .argument('<schedule>', 'schedule id or name')
    .option('--count <n>', 'how many fires (1-100)', '5')
    .option('--json', 'machine-readable output')
    .action(async (ref: string, opts: { count: string; json?: boolean }) => {
      const count = Number(opts.count);
      if (!Number.isInteger(count) || count < 1 || count > 100) throw new OrderlyError('ORDERLY_E_BAD_REQUEST', '--count takes a whole number from 1 to 100');
      const next = await client().request('GET', `/v1/schedules/${encodeURIComponent(ref)}/next?count=${count}`, NextFires);
      output(
        opts.json,
        next,
        next.fires.length === 0
          ? 'no fires ahead'
          : [`${'local'.padEnd(26)} (${next.timeZone})  utc`, ...next.fires.map((f) => `${f.local.padEnd(26)}  ${f.utc}`)],
      );
    });
  schedule
    .command('missed')
    .description('list the fires of a schedule that made no run of their own (misfires, overlaps, non-working days)')
    .argument('<schedule>', 'schedule id or name')
    .option('--json', 'machine-readable output')
    .action(async (ref: string, opts: { json?: boolean }) => {
      const { records } = await client().request('GET', `/v1/schedules/${encodeURIComponent(ref)}/fire-records`, FireRecordList);
      output(
        opts.json,
        records,
        records.length === 0
          ? 'no missed or skipped fires'
          : records.map((r) => `${r.fireTime}  ${r.reason.padEnd(8)} ${r.handling.padEnd(8)} ${r.runId ?? ''}`.trimEnd()),
      );
    });
  schedule.addCommand(calendarCommand(client));
  return schedule;
}

function describeCalendar(view: CalendarView): string[] {
  const days = ['', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
  return [
    `calendar ${view.name} (${view.timeZone})`,
    `  working days  ${view.workingDays.map((d) => days[d]).join(' ')}`,
    `  holidays      ${view.holidays.length === 0 ? '-' : view.holidays.join(' ')}`,
    `  updated       ${view.updatedAt}`,
  ];
}

/** `orderly schedule calendar …`: business calendars that schedules follow. */
function calendarCommand(client: () => ApiClient): Command {
  const calendar = new Command('calendar').description('business calendars: working days and holidays in a time zone');
  calendar
    .command('put')
    .description('create or replace a calendar NAME')
    .argument('<name>', 'calendar name: lower-case letters, digits, . _ -')
    .requiredOption('--tz <zone>', 'IANA time zone the dates are in')
    .option('--working-days <days>', 'ISO weekdays that are working days, e.g. 1-5 or 1,2,3,4,5,6', '1-5')
    .option('--holidays <dates>', 'comma-separated YYYY-MM-DD dates')
    .option('--ics <file>', 'an iCalendar file whose all-day events are holidays')
    .option('--json', 'machine-readable output')
    .action(async (name: string, opts: { tz: string; workingDays: string; holidays?: string; ics?: string; json?: boolean }) => {
      const workingDays = parseDays(opts.workingDays);
      const holidays = opts.holidays
        ? opts.holidays
            .split(',')
            .map((d) => d.trim())
            .filter(Boolean)
        : undefined;
      const ics = opts.ics ? readFileSync(opts.ics, 'utf8') : undefined;
      const view = await client().request('PUT', `/v1/calendars/${encodeURIComponent(name)}`, CalendarView, {
        timeZone: opts.tz,
        workingDays,
        ...(holidays ? { holidays } : {}),
        ...(ics !== undefined ? { ics } : {}),
      });
      output(opts.json, view, describeCalendar(view));
    });
  calendar
    .command('ls')
    .description('list calendars')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const { calendars } = await client().request('GET', '/v1/calendars', CalendarList);
      output(
        opts.json,
        calendars,
        calendars.length === 0 ? 'no calendars' : calendars.map((c) => `${c.name.padEnd(24)} ${c.timeZone.padEnd(24)} ${c.holidays.length} holidays`),
      );
    });
  for (const [verb, description] of [
    ['show', 'show a calendar'],
    ['rm', 'delete a calendar no schedule uses'],
  ] as const) {
    calendar
      .command(verb)
      .description(description)
      .argument('<name>', 'calendar name')
      .option('--json', 'machine-readable output')
      .action(async (name: string, opts: { json?: boolean }) => {
        const view = await client().request(verb === 'rm' ? 'DELETE' : 'GET', `/v1/calendars/${encodeURIComponent(name)}`, CalendarView);
        output(opts.json, view, verb === 'rm' ? `deleted calendar ${view.name}` : describeCalendar(view));
      });
  }
  return calendar;
}

/** `1-5`, `1,2,3` or a mix: ISO weekdays. */
function parseDays(text: string): number[] {
  const days = new Set<number>();
  for (const part of text.split(',')) {
    const m = /^\s*([1-7])\s*(?:-\s*([1-7])\s*)?$/.exec(part);
    if (!m) throw new OrderlyError('ORDERLY_E_CALENDAR_INVALID', '--working-days takes ISO weekdays 1-7, e.g. 1-5 or 1,2,3,4,5,6');
    for (let d = Number(m[1]); d <= Number(m[2] ?? m[1]); d++) days.add(d);
  }
  return [...days].sort();
}
