import { getNextMillis } from 'bullmq';
import { OrderlyError } from '@orderly/shared';
import { CronPattern } from './schemas';

/** When a schedule fires: a cron pattern (evaluated in UTC) or a fixed interval. */
export type Timing = { kind: 'cron'; cron: string } | { kind: 'every'; everySeconds: number };

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
export function parseTiming(request: { cron?: string | undefined; everySeconds?: number | undefined }, minSeconds: number, now = Date.now()): Timing {
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
  return { kind: 'cron', cron };
}

/** BullMQ job scheduler repeat options for a timing. */
export function repeatOptions(timing: Timing): { pattern: string; tz: 'UTC' } | { every: number } {
  return timing.kind === 'cron' ? { pattern: timing.cron, tz: 'UTC' } : { every: timing.everySeconds * 1000 };
}
