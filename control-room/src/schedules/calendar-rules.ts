import { OrderlyError } from '@orderly/shared';
import { isoWeekday, localDate, nextZonedFire, wallOf, wallToInstant } from './zoned';

/** A business calendar: the weekdays that are working days, and holidays, judged in its own zone. */
export interface BusinessCalendar {
  name: string;
  timeZone: string;
  /** ISO weekdays (1 = Monday … 7 = Sunday) that are working days. */
  workingDays: readonly number[];
  /** Non-working dates (`YYYY-MM-DD`, in the calendar's zone). */
  holidays: readonly string[];
}

/** What a schedule with a calendar does with a fire on a non-working day. */
export type CalendarPolicy = 'skip' | 'next_working_day';

/** A non-working day run longer than this is not moved over (its fires are dropped). */
export const MAX_MOVE_DAYS = 14;
const DAY = 86_400_000;

export function isWorkingDate(calendar: BusinessCalendar, date: string): boolean {
  return calendar.workingDays.includes(isoWeekday(date)) && !calendar.holidays.includes(date);
}

/** True when instant `ms` falls on a working day of the calendar (in the calendar's zone). */
export const isWorkingInstant = (calendar: BusinessCalendar, ms: number): boolean => isWorkingDate(calendar, localDate(calendar.timeZone, ms));

/**
 * A fire on a non-working day moved to the same wall-clock time (in the schedule's zone) on the
 * next working day; undefined when none comes within MAX_MOVE_DAYS.
 */
export function moveToWorkingDay(calendar: BusinessCalendar, timeZone: string, fireMs: number): number | undefined {
  const wall = wallOf(timeZone, fireMs);
  for (let k = 1; k <= MAX_MOVE_DAYS; k++) {
    const moved = wallToInstant(timeZone, wall + k * DAY);
    if (isWorkingInstant(calendar, moved)) return moved;
  }
  return undefined;
}

/** How a schedule's cron fires are computed. */
export interface CronSpec {
  cron: string;
  timeZone: string;
  calendar?: BusinessCalendar | undefined;
  calendarPolicy?: CalendarPolicy | undefined;
}

/**
 * The first fire of a cron schedule strictly after `afterMs`, with its calendar applied:
 * `skip` drops fires on non-working days; `next_working_day` moves them to the same local time
 * on the next working day, where a moved fire that meets a regular one (or another moved one)
 * is one fire. Undefined when the schedule never fires (within a search bound of two years).
 */
export function nextFire(spec: CronSpec, afterMs: number): number | undefined {
  const { cron, timeZone, calendar } = spec;
  if (!calendar) return nextZonedFire(cron, timeZone, afterMs);
  const horizon = afterMs + 2 * 366 * DAY;
  if (spec.calendarPolicy !== 'next_working_day') {
    let c = nextZonedFire(cron, timeZone, afterMs);
    while (c !== undefined && c <= horizon) {
      if (isWorkingInstant(calendar, c)) return c;
      // A whole non-working day is passed over at once (a minute pattern on a holiday is 1440 fires).
      const dayEnd = wallToInstant(timeZone, Math.floor(wallOf(timeZone, c) / DAY) * DAY + DAY) - 1;
      c = nextZonedFire(cron, timeZone, Math.max(c, dayEnd));
    }
    return undefined;
  }
  // Moved fires: a fire on a non-working day before `afterMs` may land after it, but only one of
  // the run of non-working days just before `afterMs`'s day (a working day in between takes them).
  const wallDay = (ms: number) => Math.floor(wallOf(timeZone, ms) / DAY) * DAY;
  const dayWorks = (wallDayStart: number) => isWorkingInstant(calendar, wallToInstant(timeZone, wallDayStart + DAY / 2));
  let from = wallDay(afterMs);
  for (let k = 0; k < MAX_MOVE_DAYS && !dayWorks(from - DAY); k++) from -= DAY;
  // All fires of one non-working day move by the same number of days: found once per day.
  const shiftOfDay = new Map<number, number | undefined>();
  const moved = (c: number): number | undefined => {
    const day = wallDay(c);
    if (!shiftOfDay.has(day)) {
      const m = moveToWorkingDay(calendar, timeZone, c);
      shiftOfDay.set(day, m === undefined ? undefined : Math.round((wallDay(m) - day) / DAY));
    }
    const k = shiftOfDay.get(day);
    if (k === undefined) return undefined;
    const instant = wallToInstant(timeZone, wallOf(timeZone, c) + k * DAY);
    return isWorkingInstant(calendar, instant) ? instant : moveToWorkingDay(calendar, timeZone, c);
  };
  let best: number | undefined;
  let c = nextZonedFire(cron, timeZone, Math.min(afterMs, wallToInstant(timeZone, from) - 1));
  while (c !== undefined && c <= horizon && (best === undefined || c < best)) {
    if (isWorkingInstant(calendar, c)) {
      if (c > afterMs) {
        best = best === undefined ? c : Math.min(best, c);
      } else {
        // A past working day's fires move nothing: go on from `afterMs`.
        c = nextZonedFire(cron, timeZone, afterMs);
        continue;
      }
    } else {
      const m = moved(c);
      if (m !== undefined && m > afterMs) best = best === undefined ? m : Math.min(best, m);
    }
    c = nextZonedFire(cron, timeZone, c);
  }
  return best;
}

/** The next `count` fires after `afterMs`. */
export function nextFires(spec: CronSpec, afterMs: number, count: number): number[] {
  const out: number[] = [];
  let t = afterMs;
  while (out.length < count) {
    const next = nextFire(spec, t);
    if (next === undefined) break;
    out.push(next);
    t = next;
  }
  return out;
}

const invalid = (message: string) => new OrderlyError('ORDERLY_E_CALENDAR_INVALID', message);

/** Unfolds RFC 5545 content lines (a line starting with a space or tab continues the previous one). */
const unfold = (text: string) =>
  text
    .replace(/\r\n/g, '\n')
    .replace(/\n[ \t]/g, '')
    .split('\n');

/**
 * The holiday dates of an iCalendar file: each VEVENT's DTSTART as a date (`DTSTART;VALUE=DATE:20261225`,
 * or a date-time, whose date part is taken), and every date up to (not including) a DTEND;VALUE=DATE
 * for multi-day events. Recurrence rules are not expanded (refused, so no holiday is silently lost).
 */
export function parseIcsHolidays(text: string): string[] {
  if (text.length > 1_000_000) throw invalid('the iCalendar file is larger than 1 MB');
  const lines = unfold(text).map((l) => l.trimEnd());
  if (!lines.some((l) => l.toUpperCase() === 'BEGIN:VCALENDAR')) throw invalid('not an iCalendar file: no BEGIN:VCALENDAR');
  const dates = new Set<string>();
  let inEvent = false;
  let start: string | undefined;
  let end: string | undefined;
  const dateOf = (value: string): string => {
    const m = /^(\d{4})(\d{2})(\d{2})(?:T\d{6}Z?)?$/.exec(value.trim());
    if (!m) throw invalid(`an event date is not an iCalendar date: ${value.slice(0, 40)}`);
    const iso = `${m[1]}-${m[2]}-${m[3]}`;
    if (Number.isNaN(Date.parse(`${iso}T00:00:00Z`)) || new Date(`${iso}T00:00:00Z`).toISOString().slice(0, 10) !== iso)
      throw invalid(`not a calendar date: ${value.slice(0, 40)}`);
    return iso;
  };
  for (const line of lines) {
    const upper = line.toUpperCase();
    if (upper === 'BEGIN:VEVENT') {
      inEvent = true;
      start = end = undefined;
    } else if (upper === 'END:VEVENT') {
      if (!start) throw invalid('a VEVENT has no DTSTART');
      dates.add(start);
      if (end && end > start) {
        for (let d = Date.parse(`${start}T00:00:00Z`) + DAY; d < Date.parse(`${end}T00:00:00Z`) && dates.size < 5000; d += DAY)
          dates.add(new Date(d).toISOString().slice(0, 10));
      }
      inEvent = false;
    } else if (inEvent) {
      const colon = line.indexOf(':');
      if (colon < 0) continue;
      const name = upper.slice(0, colon).split(';')[0];
      const value = line.slice(colon + 1);
      if (name === 'DTSTART') start = dateOf(value);
      else if (name === 'DTEND' && upper.slice(0, colon).includes('VALUE=DATE')) end = dateOf(value);
      else if (name === 'RRULE') throw invalid('recurring events (RRULE) are not supported: list each holiday as its own event');
    }
    if (dates.size > 5000) throw invalid('more than 5000 holidays');
  }
  return [...dates].sort();
}
