import { hasCode } from '@orderly/shared';
import { BusinessCalendar, isWorkingDate, moveToWorkingDay, nextFires, parseIcsHolidays } from './calendar-rules';
import { assertTimeZone, formatLocal, nextZonedFire, wallToInstant } from './zoned';

const iso = (ms: number | undefined) => (ms === undefined ? 'never' : new Date(ms).toISOString());
const fires = (cron: string, timeZone: string, from: string, count: number, calendar?: BusinessCalendar, policy?: 'skip' | 'next_working_day') =>
  nextFires({ cron, timeZone, calendar, calendarPolicy: policy }, Date.parse(from), count).map(iso);

describe('America/New_York', () => {
  const NY = 'America/New_York';
  test('02:30 on the spring-forward day (2026-03-08) fires at the first instant after the gap, 03:00 EDT', () => {
    expect(fires('30 2 * * *', NY, '2026-03-06T12:00:00Z', 4)).toEqual([
      '2026-03-07T07:30:00.000Z', // 02:30 EST
      '2026-03-08T07:00:00.000Z', // 03:00 EDT: 02:30 does not exist
      '2026-03-09T06:30:00.000Z', // 02:30 EDT
      '2026-03-10T06:30:00.000Z',
    ]);
    expect(formatLocal(NY, Date.parse('2026-03-08T07:00:00Z'))).toBe('2026-03-08T03:00:00-04:00');
  });
  test('01:30 on the fall-back day (2026-11-01) fires once, at its first occurrence (EDT)', () => {
    expect(fires('30 1 * * *', NY, '2026-10-31T12:00:00Z', 2)).toEqual(['2026-11-01T05:30:00.000Z', '2026-11-02T06:30:00.000Z']);
    expect(formatLocal(NY, Date.parse('2026-11-01T05:30:00Z'))).toBe('2026-11-01T01:30:00-04:00');
    // Asked from between the two occurrences, the second (EST) one is not a fire.
    expect(iso(nextZonedFire('30 1 * * *', NY, Date.parse('2026-11-01T06:00:00Z')))).toBe('2026-11-02T06:30:00.000Z');
  });
  test('an hourly pattern fires once per wall-clock hour across both changes', () => {
    // Spring forward: 01:00 EST, then 03:00 EDT (02:00 does not exist and meets 03:00: one fire).
    expect(fires('0 * * * *', NY, '2026-03-08T05:30:00Z', 3)).toEqual(['2026-03-08T06:00:00.000Z', '2026-03-08T07:00:00.000Z', '2026-03-08T08:00:00.000Z']);
    // Fall back: 00:00 EDT, 01:00 EDT, (01:00 EST is the same wall time: no fire), 02:00 EST.
    expect(fires('0 * * * *', NY, '2026-11-01T03:30:00Z', 3)).toEqual(['2026-11-01T04:00:00.000Z', '2026-11-01T05:00:00.000Z', '2026-11-01T07:00:00.000Z']);
  });
  test('a non-gap wall time maps to its own instant', () => {
    expect(iso(wallToInstant(NY, Date.parse('2026-07-01T09:00:00Z')))).toBe('2026-07-01T13:00:00.000Z');
  });
});

describe('Europe/Berlin', () => {
  const BER = 'Europe/Berlin';
  test('spring forward 2026-03-29: 02:30 fires at 03:00 CEST', () => {
    expect(fires('30 2 * * *', BER, '2026-03-28T12:00:00Z', 2)).toEqual(['2026-03-29T01:00:00.000Z', '2026-03-30T00:30:00.000Z']);
  });
  test('fall back 2026-10-25: 02:30 fires once, at 02:30 CEST', () => {
    expect(fires('30 2 * * *', BER, '2026-10-24T12:00:00Z', 2)).toEqual(['2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z']);
  });
  test('09:00 on weekdays stays 09:00 local across the change (UTC hour moves)', () => {
    expect(fires('0 9 * * 1-5', BER, '2026-03-26T12:00:00Z', 3)).toEqual(['2026-03-27T08:00:00.000Z', '2026-03-30T07:00:00.000Z', '2026-03-31T07:00:00.000Z']);
  });
});

test('unknown time zones are refused with ORDERLY_E_TIME_ZONE_UNKNOWN', () => {
  for (const tz of ['Mars/Olympus', 'America/New York', '', '../etc/passwd']) {
    let code = 'accepted';
    try {
      assertTimeZone(tz);
    } catch (err) {
      code = hasCode(err, 'ORDERLY_E_TIME_ZONE_UNKNOWN') ? 'ORDERLY_E_TIME_ZONE_UNKNOWN' : String(err);
    }
    expect({ tz, code }).toEqual({ tz, code: 'ORDERLY_E_TIME_ZONE_UNKNOWN' });
  }
  expect(assertTimeZone('Europe/Berlin')).toBe('Europe/Berlin');
  expect(assertTimeZone('UTC')).toBe('UTC');
});

describe('business calendars', () => {
  // Synthetic: Monday 2026-12-28 and Friday 2027-01-01 are holidays; Monday to Friday work.
  const cal: BusinessCalendar = {
    name: 'ops-us',
    timeZone: 'America/New_York',
    workingDays: [1, 2, 3, 4, 5],
    holidays: ['2026-12-25', '2026-12-28', '2027-01-01'],
  };
  test('working days are weekdays that are not holidays', () => {
    expect(['2026-12-24', '2026-12-25', '2026-12-26', '2026-12-28', '2026-12-29'].map((d) => isWorkingDate(cal, d))).toEqual([true, false, false, false, true]);
  });
  test('skip: a daily fire on a holiday or weekend makes no fire', () => {
    expect(fires('0 9 * * *', 'America/New_York', '2026-12-24T15:00:00Z', 3, cal, 'skip')).toEqual([
      '2026-12-29T14:00:00.000Z',
      '2026-12-30T14:00:00.000Z',
      '2026-12-31T14:00:00.000Z',
    ]);
  });
  test('next_working_day: a Monday-only fire on a holiday moves to Tuesday, same local time', () => {
    expect(fires('0 9 * * 1', 'America/New_York', '2026-12-20T00:00:00Z', 2, cal, 'next_working_day')).toEqual([
      '2026-12-21T14:00:00.000Z',
      '2026-12-29T14:00:00.000Z', // Monday 12-28 is a holiday: Tuesday 09:00
    ]);
    // Asked on the holiday itself, after 09:00: the moved fire is still ahead.
    expect(fires('0 9 * * 1', 'America/New_York', '2026-12-28T20:00:00Z', 1, cal, 'next_working_day')).toEqual(['2026-12-29T14:00:00.000Z']);
  });
  test('next_working_day: fires of a weekend and a holiday collapse into the regular fire of the next working day', () => {
    expect(fires('0 9 * * *', 'America/New_York', '2026-12-24T15:00:00Z', 2, cal, 'next_working_day')).toEqual([
      '2026-12-29T14:00:00.000Z',
      '2026-12-30T14:00:00.000Z',
    ]);
  });
  test('a move keeps local time across a DST change', () => {
    const berlin: BusinessCalendar = { name: 'de', timeZone: 'Europe/Berlin', workingDays: [1, 2, 3, 4, 5], holidays: ['2026-03-27'] };
    // Friday 2026-03-27 09:00 CET is a holiday: moved to Monday 03-30 09:00 CEST (07:00Z).
    expect(iso(moveToWorkingDay(berlin, 'Europe/Berlin', Date.parse('2026-03-27T08:00:00Z')))).toBe('2026-03-30T07:00:00.000Z');
  });
});

describe('iCalendar holidays', () => {
  const ics = [
    'BEGIN:VCALENDAR',
    'VERSION:2.0',
    'PRODID:-//synthetic//EN',
    'BEGIN:VEVENT',
    'UID:a@example.test',
    'DTSTART;VALUE=DATE:20261225',
    'SUMMARY:Winter break',
    'DTEND;VALUE=DATE:20261227',
    'END:VEVENT',
    'BEGIN:VEVENT',
    'UID:b@example.test',
    'DTSTART;VALUE=DATE:2027',
    ' 0101',
    'SUMMARY:New year',
    'END:VEVENT',
    'END:VCALENDAR',
    '',
  ].join('\r\n');
  test('DTSTART dates, multi-day DTEND (exclusive) and folded lines', () => {
    expect(parseIcsHolidays(ics)).toEqual(['2026-12-25', '2026-12-26', '2027-01-01']);
  });
  test('not a calendar, a bad date or a recurrence rule is ORDERLY_E_CALENDAR_INVALID', () => {
    for (const text of ['hello', ics.replace('20261225', '20261332'), ics.replace('SUMMARY:New year', 'RRULE:FREQ=YEARLY')]) {
      expect(() => parseIcsHolidays(text)).toThrow(expect.objectContaining({ code: 'ORDERLY_E_CALENDAR_INVALID' }));
    }
  });
});
