import { canTransition, isTerminal, RUN_STATUSES, RUN_TRANSITIONS, RunStatus } from './run-state';

const TERMINAL: RunStatus[] = ['succeeded', 'failed', 'cancelled', 'discarded'];

describe('run state transitions', () => {
  it('has a table entry for every status, and only for statuses', () => {
    expect(Object.keys(RUN_TRANSITIONS).sort()).toEqual([...RUN_STATUSES].sort());
  });

  it('only leads to known statuses, never to itself', () => {
    for (const from of RUN_STATUSES) {
      for (const to of RUN_TRANSITIONS[from]) {
        expect(RUN_STATUSES).toContain(to);
        expect(to).not.toBe(from);
      }
    }
  });

  it.each(TERMINAL)('%s is terminal: no exits', (status) => {
    expect(isTerminal(status)).toBe(true);
    for (const to of RUN_STATUSES) expect(canTransition(status, to)).toBe(false);
  });

  it.each(RUN_STATUSES.filter((s) => !TERMINAL.includes(s)))('%s is not terminal', (status) => {
    expect(isTerminal(status)).toBe(false);
  });

  it('every status is the target of some transition (waiting by retry or requeue)', () => {
    for (const to of RUN_STATUSES) {
      expect(RUN_STATUSES.some((from) => canTransition(from, to))).toBe(true);
    }
  });

  it('does not let a waiting run succeed without running', () => {
    expect(canTransition('waiting', 'succeeded')).toBe(false);
  });

  it('lets a dead-lettered run be requeued or discarded, and nothing else', () => {
    expect(RUN_STATUSES.filter((to) => canTransition('dead_lettered', to))).toEqual(['waiting', 'discarded']);
  });

  it.each<[RunStatus, RunStatus]>([
    ['waiting', 'active'],
    ['waiting', 'cancelled'],
    ['active', 'succeeded'],
    ['active', 'failed'],
    ['active', 'waiting'],
    ['active', 'dead_lettered'],
    ['active', 'cancelled'],
  ])('allows %s -> %s', (from, to) => {
    expect(canTransition(from, to)).toBe(true);
  });

  it.each<[RunStatus, RunStatus]>([
    ['succeeded', 'active'],
    ['failed', 'waiting'],
    ['cancelled', 'waiting'],
    ['dead_lettered', 'succeeded'],
    ['dead_lettered', 'active'],
  ])('refuses %s -> %s', (from, to) => {
    expect(canTransition(from, to)).toBe(false);
  });
});
