import { stepAad, stepStanding } from './steps';

const claimedAt = new Date('2030-01-01T10:00:00Z');
const before = new Date('2030-01-01T09:59:00Z');
const after = new Date('2030-01-01T10:00:05Z');

describe('step state machine, from the asking attempt', () => {
  test('no row: the step is new to the run', () => {
    expect(stepStanding(undefined, { attempt: 2, claimedAt })).toBe('absent');
  });

  test('recorded done by any attempt: done, never run again', () => {
    expect(stepStanding({ status: 'done', attempt: 1, started_at: before }, { attempt: 2, claimedAt })).toBe('done');
    expect(stepStanding({ status: 'done', attempt: 2, started_at: after }, { attempt: 2, claimedAt })).toBe('done');
  });

  test('started by this very attempt: its own (a repeated begin)', () => {
    expect(stepStanding({ status: 'started', attempt: 2, started_at: after }, { attempt: 2, claimedAt })).toBe('ours');
  });

  test('started by an earlier attempt and never recorded done: uncertain', () => {
    expect(stepStanding({ status: 'started', attempt: 1, started_at: before }, { attempt: 2, claimedAt })).toBe('uncertain');
  });

  test('a run requeued with attempts reset: the same number before this claim is another attempt, so uncertain', () => {
    expect(stepStanding({ status: 'started', attempt: 1, started_at: before }, { attempt: 1, claimedAt })).toBe('uncertain');
  });

  test('a replaced attempt with a higher number (before a reset) is not this attempt', () => {
    expect(stepStanding({ status: 'started', attempt: 3, started_at: before }, { attempt: 1, claimedAt })).toBe('uncertain');
  });

  test('the AAD names run and step, so a sealed result cannot be moved to another step or run', () => {
    expect(stepAad('r1', 'submit-claim')).not.toBe(stepAad('r1', 'confirm'));
    expect(stepAad('r1', 'submit-claim')).not.toBe(stepAad('r2', 'submit-claim'));
  });
});
