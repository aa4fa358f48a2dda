/**
 * A run is in exactly one of these states. Transitions are a table, checked on every write,
 * so a late or duplicated report cannot move a finished run backwards.
 */
export const RUN_STATUSES = ['waiting', 'active', 'succeeded', 'failed', 'dead_lettered', 'cancelled', 'discarded'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

export const RUN_TRANSITIONS: Readonly<Record<RunStatus, readonly RunStatus[]>> = {
  waiting: ['active', 'cancelled', 'dead_lettered', 'failed'],
  // active -> waiting: a retryable failure with attempts left goes back to the queue.
  active: ['waiting', 'succeeded', 'failed', 'dead_lettered', 'cancelled'],
  succeeded: [],
  failed: [],
  // A dead letter is requeued (same idempotency key, checkpoints kept) or discarded with a reason.
  dead_lettered: ['waiting', 'discarded'],
  cancelled: [],
  discarded: [],
};

export function canTransition(from: RunStatus, to: RunStatus): boolean {
  return RUN_TRANSITIONS[from].includes(to);
}

export function isTerminal(status: RunStatus): boolean {
  return RUN_TRANSITIONS[status].length === 0;
}
