import type { Calendars } from './calendars';
import type { BusinessCalendar } from './calendar-rules';
import { scheduleRepeatStrategy } from './schedules';

/** The strategy BullMQ calls for a cron scheduler's next fire: zone from `tz`, calendar from the tick's job name. */
const calendar: BusinessCalendar = { name: 'ops-us', timeZone: 'America/New_York', workingDays: [1, 2, 3, 4, 5], holidays: ['2027-03-15'] };
const calendars = { cached: async (name: string) => (name === 'ops-us' ? calendar : undefined) } as unknown as Calendars;
const strategy = scheduleRepeatStrategy(calendars);
const iso = (ms: number | undefined) => (ms === undefined ? 'never' : new Date(ms).toISOString());

test('a nonexistent local time fires after the gap, not shifted by it like BullMQ would', async () => {
  expect(iso(await strategy(Date.parse('2027-03-13T12:00:00Z'), { pattern: '30 2 * * *', tz: 'America/New_York' }, 'tick'))).toBe('2027-03-14T07:00:00.000Z');
});

test('the calendar named in the job name is applied; an unknown one is ignored', async () => {
  // Monday 2027-03-15 is a holiday: skipped to Tuesday, or moved to Tuesday for a Monday-only pattern.
  const from = Date.parse('2027-03-14T12:00:00Z');
  expect(iso(await strategy(from, { pattern: '0 9 * * 1', tz: 'America/New_York' }, 'tick@ops-us@skip'))).toBe('2027-03-22T13:00:00.000Z');
  expect(iso(await strategy(from, { pattern: '0 9 * * 1', tz: 'America/New_York' }, 'tick@ops-us@next_working_day'))).toBe('2027-03-16T13:00:00.000Z');
  expect(iso(await strategy(from, { pattern: '0 9 * * 1', tz: 'America/New_York' }, 'tick@gone@skip'))).toBe('2027-03-15T13:00:00.000Z');
  expect(await strategy(from, { every: 1000 }, 'tick')).toBeUndefined();
});
