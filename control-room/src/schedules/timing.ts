import { getNextMillis } from 'bullmq';
import { OrderlyError } from '@orderly/shared';
import type { CalendarPolicy } from './calendar-rules';
import { CronPattern } from '@orderly/shared';
import { assertTimeZone } from './zoned';

/**
 * When a schedule fires: a cron pattern read on the wall clock of `timeZone` (see `zoned.ts`),
 * optionally through a business calendar (`calendar`: its name, and the policy for non-working
 * days), or a fixed interval (time zones do not change intervals; a calendar may only skip them).
 */
export type Timing =
  | { kind: 'cron'; cron: string; timeZone: string; calendar?: { name: string; policy: CalendarPolicy } | undefined }
  | { kind: 'every'; everySeconds: number; calendar?: { name: string; policy: CalendarPolicy } | undefined };

/** Cron fires looked at to find the shortest gap between two of them (covers minute and hour steps). */
const CRON_SAMPLES = 60;

const invalid = (message: string, details: Record<string, string | number> = {}) => new OrderlyError('ORDERLY_E_SCHEDULE_INVALID', message, details);

/** The next fire of `cron` after `afterMs` in UTC; throws ORDERLY_E_SCHEDULE_INVALID for a pattern the parser refuses. */
function nextCronFire(cron: string, afterMs: number): number | undefined {
  try {
    return getNextMillis(afterMs, { pattern: cron, tz: 'UTC' });
  } catch (err) {
    // The parser's message names the offending field, never anything but the pattern itself.
    throw invalid(`invalid cron pattern: ${err instanceof Error ? err.message.slice(0, 200) : 'unparseable'}`);
  }
}

/**
 * Checks the timing part of a schedule request: exactly one of `cron` and `everySeconds`, a cron
 * pattern the parser accepts and that fires at all, and no two fires closer than `minSeconds`
 * (a bot that touches PHI every second is a mistake, not a schedule).
 */
export function parseTiming(
  request: { cron?: string | undefined; everySeconds?: number | undefined; timeZone?: string | undefined },
  minSeconds: number,
  now = Date.now(),
): Timing {
  if (request.timeZone !== undefined) assertTimeZone(request.timeZone);
  if ((request.cron === undefined) === (request.everySeconds === undefined)) {
    throw invalid('a schedule needs exactly one of cron and everySeconds');
  }
  if (request.everySeconds !== undefined) {
    const every = request.everySeconds;
    if (!Number.isInteger(every) || every < minSeconds || every > 366 * 24 * 3600) {
      throw invalid(`everySeconds must be a whole number of seconds from ${minSeconds} to one year`, { minimumSeconds: minSeconds });
    }
    return { kind: 'every', everySeconds: every };
  }
  const cron = request.cron!.trim().replace(/\s+/g, ' ');
  if (!CronPattern.safeParse(cron).success || ![5, 6].includes(cron.split(' ').length)) {
    throw invalid('a cron pattern has 5 fields (minute hour day month weekday) or 6 (with seconds first)');
  }
  let previous = nextCronFire(cron, now);
  if (previous === undefined) throw invalid('the cron pattern never fires');
  for (let i = 1; i < CRON_SAMPLES; i++) {
    const next = nextCronFire(cron, previous);
    if (next === undefined) break;
    if (next - previous < minSeconds * 1000) {
      throw invalid(`the cron pattern fires more often than every ${minSeconds} seconds`, { minimumSeconds: minSeconds });
    }
    previous = next;
  }
  return { kind: 'cron', cron, timeZone: request.timeZone ?? 'UTC' };
}

/**
 * BullMQ job scheduler repeat options for a timing. A cron scheduler's next fire is computed by
 * the control room's own repeat strategy (`scheduleRepeatStrategy`), not BullMQ's default, which
 * shifts a nonexistent local time by the gap and fires a repeated one twice.
 */
export function repeatOptions(timing: Timing): { pattern: string; tz: string } | { every: number } {
  return timing.kind === 'cron' ? { pattern: timing.cron, tz: timing.timeZone } : { every: timing.everySeconds * 1000 };
}

/**
 * The job name of a schedule's ticks: `tick`, or `tick@CALENDAR@POLICY` when the schedule follows
 * a calendar, so that the repeat strategy (which BullMQ gives the pattern, zone and job name
 * only) knows which calendar to apply.
 */
export function tickName(timing: Timing): string {
  return timing.calendar ? `tick@${timing.calendar.name}@${timing.calendar.policy}` : 'tick';
}

/** The calendar part of a tick's job name (see `tickName`). */
export function calendarOfTickName(name: string | undefined): { name: string; policy: CalendarPolicy } | undefined {
  const m = /^tick@([a-z0-9][a-z0-9._-]{0,63})@(skip|next_working_day)$/.exec(name ?? '');
  return m ? { name: m[1]!, policy: m[2] as CalendarPolicy } : undefined;
}
