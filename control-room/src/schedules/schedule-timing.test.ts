import { hasCode } from '@orderly/shared';
import { fireTimeOf } from './scheduler-queue';
import { calendarOfTickName, parseTiming, repeatOptions, tickName } from './timing';

const NOW = Date.UTC(2026, 0, 5, 10, 0, 0); // a Monday

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return hasCode(err, 'ORDERLY_E_SCHEDULE_INVALID') ? 'ORDERLY_E_SCHEDULE_INVALID' : `other: ${String(err)}`;
  }
  return 'accepted';
}

test('exactly one of cron and everySeconds', () => {
  expect(refusal(() => parseTiming({}, 60, NOW))).toBe('ORDERLY_E_SCHEDULE_INVALID');
  expect(refusal(() => parseTiming({ cron: '0 6 * * *', everySeconds: 3600 }, 60, NOW))).toBe('ORDERLY_E_SCHEDULE_INVALID');
  expect(parseTiming({ everySeconds: 3600 }, 60, NOW)).toEqual({ kind: 'every', everySeconds: 3600 });
  expect(parseTiming({ cron: ' 0  6 * * 1-5 ' }, 60, NOW)).toEqual({ kind: 'cron', cron: '0 6 * * 1-5', timeZone: 'UTC' });
  expect(parseTiming({ cron: '30 2 * * *', timeZone: 'America/New_York' }, 60, NOW)).toEqual({
    kind: 'cron',
    cron: '30 2 * * *',
    timeZone: 'America/New_York',
  });
  expect(() => parseTiming({ cron: '30 2 * * *', timeZone: 'Mars/Olympus' }, 60, NOW)).toThrow(
    expect.objectContaining({ code: 'ORDERLY_E_TIME_ZONE_UNKNOWN' }),
  );
});

test('intervals are whole seconds, no shorter than the minimum', () => {
  expect(refusal(() => parseTiming({ everySeconds: 59 }, 60, NOW))).toBe('ORDERLY_E_SCHEDULE_INVALID');
  expect(refusal(() => parseTiming({ everySeconds: 60.5 }, 60, NOW))).toBe('ORDERLY_E_SCHEDULE_INVALID');
  expect(refusal(() => parseTiming({ everySeconds: 0 }, 1, NOW))).toBe('ORDERLY_E_SCHEDULE_INVALID');
  expect(refusal(() => parseTiming({ everySeconds: 400 * 24 * 3600 }, 1, NOW))).toBe('ORDERLY_E_SCHEDULE_INVALID');
  expect(parseTiming({ everySeconds: 1 }, 1, NOW)).toEqual({ kind: 'every', everySeconds: 1 });
});

test('cron patterns the parser refuses, that never fire, or fire too often are refused', () => {
  for (const cron of ['61 * * * *', 'nope nope * * *', '* * *', '0 6 * * * * *', '0 6 31 2 *', '$(rm) * * * *']) {
    expect({ cron, outcome: refusal(() => parseTiming({ cron }, 60, NOW)) }).toEqual({ cron, outcome: 'ORDERLY_E_SCHEDULE_INVALID' });
  }
  // Every second (six fields), every 30 s, and two fires a second apart once an hour.
  for (const cron of ['* * * * * *', '*/30 * * * * *', '0,1 0 * * * *']) {
    expect({ cron, outcome: refusal(() => parseTiming({ cron }, 60, NOW)) }).toEqual({ cron, outcome: 'ORDERLY_E_SCHEDULE_INVALID' });
  }
  expect(refusal(() => parseTiming({ cron: '*/5 * * * *' }, 60, NOW))).toBe('accepted');
  expect(refusal(() => parseTiming({ cron: '*/30 * * * * *' }, 30, NOW))).toBe('accepted');
});

test('cron is evaluated in the schedule zone and intervals in milliseconds; a calendar is named in the tick', () => {
  expect(repeatOptions({ kind: 'cron', cron: '0 6 * * *', timeZone: 'UTC' })).toEqual({ pattern: '0 6 * * *', tz: 'UTC' });
  expect(repeatOptions({ kind: 'cron', cron: '0 6 * * *', timeZone: 'Europe/Berlin' })).toEqual({ pattern: '0 6 * * *', tz: 'Europe/Berlin' });
  const timing = { kind: 'cron', cron: '0 9 * * 1', timeZone: 'America/New_York', calendar: { name: 'ops-us', policy: 'next_working_day' } } as const;
  expect(tickName(timing)).toBe('tick@ops-us@next_working_day');
  expect(calendarOfTickName(tickName(timing))).toEqual({ name: 'ops-us', policy: 'next_working_day' });
  expect(tickName({ kind: 'every', everySeconds: 60 })).toBe('tick');
  for (const name of ['tick', 'tick@Bad@skip', 'tick@ops@later', undefined]) expect(calendarOfTickName(name)).toBeUndefined();
  expect(repeatOptions({ kind: 'every', everySeconds: 90 })).toEqual({ every: 90_000 });
});

test('the fire time comes from the scheduler job id, for this schedule only', () => {
  const id = '0b7c2a52-8a5e-4c44-9d1c-3f1e2d4b5a69';
  expect(fireTimeOf(`repeat:${id}:1767607200000`, id)).toBe(1767607200000);
  expect(fireTimeOf(`repeat:${id}:1767607200000`, '1b7c2a52-8a5e-4c44-9d1c-3f1e2d4b5a69')).toBeUndefined();
  for (const jobId of [undefined, '42', `repeat:${id}:`, `repeat:${id}:12ab`, `repeat:${id}:1:2`, `x${`repeat:${id}:1`}`])
    expect(fireTimeOf(jobId, id)).toBeUndefined();
});
