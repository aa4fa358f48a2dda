import { getNextMillis } from 'bullmq';
import { OrderlyError } from '@orderly/shared';

/**
 * Wall-clock time in an IANA zone, without a date library: `Intl.DateTimeFormat` gives the local
 * fields of an instant, and everything else is arithmetic on "wall milliseconds" (the local date
 * and time read as if they were UTC). Cron patterns are evaluated on wall time, so `30 2 * * *`
 * means 02:30 on the clock of the schedule's zone, and then mapped to an instant by the rules of
 * `wallToInstant`:
 *
 * - a local time that does not exist (skipped by a spring-forward change) fires at the first
 *   valid instant after the gap (02:30 on 2026-03-08 in America/New_York fires at 03:00 EDT);
 * - a local time that exists twice (repeated by a fall-back change) fires once, at its first
 *   occurrence (01:30 on 2026-11-01 in America/New_York fires at 01:30 EDT, not again at EST).
 */

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** An IANA zone name (e.g. `Europe/Berlin`, `UTC`), or ORDERLY_E_TIME_ZONE_UNKNOWN. */
export function assertTimeZone(timeZone: string): string {
  if (typeof timeZone !== 'string' || timeZone.length === 0 || timeZone.length > 64 || !/^[A-Za-z][A-Za-z0-9_+\-/]*$/.test(timeZone)) {
    throw new OrderlyError('ORDERLY_E_TIME_ZONE_UNKNOWN', 'a time zone is an IANA name such as Europe/Berlin or UTC', {
      timeZone: String(timeZone).slice(0, 64),
    });
  }
  try {
    formatter(timeZone);
  } catch {
    throw new OrderlyError('ORDERLY_E_TIME_ZONE_UNKNOWN', `unknown time zone ${timeZone}`, { timeZone });
  }
  return timeZone;
}

/** The wall time (local fields read as UTC) of instant `ms` in `timeZone`. */
export function wallOf(timeZone: string, ms: number): number {
  const parts: Record<string, number> = {};
  for (const p of formatter(timeZone).formatToParts(new Date(Math.floor(ms / 1000) * 1000))) {
    if (p.type !== 'literal') parts[p.type] = Number(p.value);
  }
  return Date.UTC(parts.year!, parts.month! - 1, parts.day!, parts.hour!, parts.minute!, parts.second!) + (((ms % 1000) + 1000) % 1000);
}

/** The zone's offset from UTC at instant `ms`, in milliseconds (e.g. -4 h for EDT). */
export const offsetAt = (timeZone: string, ms: number): number => wallOf(timeZone, ms) - ms;

/** The local date (`YYYY-MM-DD`) of instant `ms` in `timeZone`. */
export const localDate = (timeZone: string, ms: number): string => new Date(wallOf(timeZone, ms)).toISOString().slice(0, 10);

/** ISO weekday (1 = Monday … 7 = Sunday) of a `YYYY-MM-DD` date. */
export const isoWeekday = (date: string): number => ((new Date(`${date}T00:00:00Z`).getUTCDay() + 6) % 7) + 1;

/**
 * The instant of wall time `wall` in `timeZone`: its first occurrence when the clock shows it twice,
 * and the first instant after the gap when the clock skips it (see the rules above).
 */
export function wallToInstant(timeZone: string, wall: number): number {
  const offsets = new Set([offsetAt(timeZone, wall - 86_400_000), offsetAt(timeZone, wall), offsetAt(timeZone, wall + 86_400_000)]);
  const valid = [...offsets]
    .map((o) => wall - o)
    .filter((ms) => wallOf(timeZone, ms) === wall)
    .sort((a, b) => a - b);
  if (valid.length > 0) return valid[0]!;
  // In a gap: the change happened between the two readings; find its instant (whole seconds).
  const sorted = [...offsets].sort((a, b) => a - b);
  let lo = wall - sorted.at(-1)!; // read with the later (larger) offset: before the change
  let hi = wall - sorted[0]!; // read with the earlier offset: after the change
  if (wallOf(timeZone, hi) < wall) return hi; // not a gap we understand: never fire early
  while (hi - lo > 1000) {
    const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
    if (wallOf(timeZone, mid) > wall) hi = mid;
    else lo = mid;
  }
  return hi;
}

/** The next wall time after `wall` that the cron pattern names (evaluated on a clock without changes). */
function nextWall(cron: string, wall: number): number | undefined {
  return getNextMillis(wall, { pattern: cron, tz: 'UTC' });
}

/** The first fire of `cron` in `timeZone` strictly after instant `afterMs`, by the rules above; undefined if it never fires. */
export function nextZonedFire(cron: string, timeZone: string, afterMs: number): number | undefined {
  // Wall times before the wall time of `afterMs` map to instants at or before it (the mapping keeps order).
  let wall = wallOf(timeZone, afterMs);
  for (let i = 0; i < 100_000; i++) {
    const next = nextWall(cron, wall);
    if (next === undefined) return undefined;
    const instant = wallToInstant(timeZone, next);
    if (instant > afterMs) return instant;
    wall = next;
  }
  return undefined;
}

/** Formats an instant as local time with its offset, e.g. `2026-03-08T03:00:00-04:00`. */
export function formatLocal(timeZone: string, ms: number): string {
  const offset = Math.round(offsetAt(timeZone, ms) / 60_000);
  const sign = offset < 0 ? '-' : '+';
  const abs = Math.abs(offset);
  const hhmm = `${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
  return `${new Date(wallOf(timeZone, ms)).toISOString().slice(0, 19)}${sign}${hhmm}`;
}
