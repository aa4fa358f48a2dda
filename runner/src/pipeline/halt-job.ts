import type { ErrorCode } from '@orderly/shared';

/**
 * What becomes of a queue job, decided by the pipeline and carried out by the BullMQ adapter
 * (worker.ts): `done` completes the job; `delay` puts it back for `ms` without spending a BullMQ
 * attempt; `drop` fails it for good (UnrecoverableError); `retry` fails it so that BullMQ retries
 * it. Only the code travels to BullMQ, which keeps failure reasons in Redis: never a message.
 */
export type JobFate = { kind: 'done'; ok: boolean } | { kind: 'delay'; ms: number } | { kind: 'drop'; code: string } | { kind: 'retry'; code: string };

/** A step stops the pipeline with the job's fate (a deferred or refused claim, a package to fetch later). */
export class HaltJob extends Error {
  constructor(readonly fate: JobFate) {
    super(`job halted: ${fate.kind}`);
    this.name = 'HaltJob';
  }
}

/**
 * A step refuses the job: the bot is not run, the refusal is reported (so the control room can
 * dead-letter a run that the verified job names) and the job is dropped.
 */
export class RefuseJob extends Error {
  constructor(
    readonly code: ErrorCode | string,
    readonly reason: string,
    readonly runId: string | undefined,
  ) {
    super(`job refused: ${code}`);
    this.name = 'RefuseJob';
  }
}
