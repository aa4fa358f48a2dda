import { Command } from 'commander';
import { OrderlyError } from '@orderly/shared';
import { ApiClient } from '../api-client';
import { readJsonInput } from '../input';
import { output } from '../output';
import { ScheduleList, ScheduleView } from '../../schedules/schemas';

function when(view: ScheduleView): string {
  return view.cron !== null ? `cron "${view.cron}" (UTC)` : `every ${view.everySeconds} s`;
}

function describe(view: ScheduleView): string[] {
  return [
    `schedule ${view.name} (${view.id})`,
    `  bot        ${view.bot}@${view.version ?? 'latest'}`,
    `  segment    ${view.segment}`,
    `  fires      ${when(view)}${view.paused ? ', paused' : ''}`,
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
    .option('--cron <pattern>', 'cron pattern in UTC, e.g. "0 6 * * 1-5"')
    .option('--every <seconds>', 'fixed interval in seconds')
    .option('--json', 'machine-readable output')
    .action(async (name: string, bot: string, opts: { input?: string; version?: string; segment?: string; cron?: string; every?: string; json?: boolean }) => {
      if ((opts.cron === undefined) === (opts.every === undefined)) throw new OrderlyError('ORDERLY_E_SCHEDULE_INVALID', 'give exactly one of --cron and --every');
      const every = opts.every === undefined ? undefined : Number(opts.every);
      if (every !== undefined && !Number.isInteger(every)) throw new OrderlyError('ORDERLY_E_SCHEDULE_INVALID', '--every takes a whole number of seconds');
      const input = readJsonInput(opts.input);
      const view = await client().request('POST', '/v1/schedules', ScheduleView, {
        name, bot, input,
        ...(opts.version ? { version: opts.version } : {}),
        ...(opts.segment ? { segment: opts.segment } : {}),
        ...(opts.cron !== undefined ? { cron: opts.cron } : { everySeconds: every }),
      });
      output(opts.json, view, describe(view));
    });
  schedule
    .command('ls')
    .description('list schedules')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const { schedules } = await client().request('GET', '/v1/schedules', ScheduleList);
      output(opts.json, schedules, schedules.length === 0 ? 'no schedules' : schedules.map((s) => `${s.name.padEnd(24)} ${`${s.bot}@${s.version ?? 'latest'}`.padEnd(32)} ${s.segment.padEnd(10)} ${when(s)}${s.paused ? ' paused' : ''}`));
    });
  for (const [verb, description] of [['show', 'show a schedule (never its input)'], ['pause', 'pause a schedule: no runs until resumed'], ['resume', 'resume a paused schedule'], ['rm', 'delete a schedule']] as const) {
    schedule
      .command(verb)
      .description(description)
      .argument('<schedule>', 'schedule id or name')
      .option('--json', 'machine-readable output')
      .action(async (ref: string, opts: { json?: boolean }) => {
        const path = `/v1/schedules/${encodeURIComponent(ref)}`;
        const view = verb === 'show'
          ? await client().request('GET', path, ScheduleView)
          : verb === 'rm' ? await client().request('DELETE', path, ScheduleView) : await client().request('POST', `${path}/${verb}`, ScheduleView);
        output(opts.json, view, verb === 'rm' ? `deleted schedule ${view.name} (${view.id})` : describe(view));
      });
  }
  return schedule;
}
