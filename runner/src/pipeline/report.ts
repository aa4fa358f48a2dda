import { ClaimResponse, ErrorBody, errorBody, isOrderlyError, OrderlyError, SandboxDenials } from '@orderly/shared';
import type { Logger } from '@orderly/shared';
import type { JobFate, RefuseJob } from './halt-job';
import type { ReportPort } from './ports';
import type { ResultLeaving } from './result-redaction';
import type { RunLog } from './run-log';

/** An error as a report may carry it: ours as it is, anything else as an internal failure (its message unknown, so not kept). */
export function toErrorBody(err: unknown): ErrorBody {
  if (isOrderlyError(err)) return (err as OrderlyError).toJSON();
  return errorBody('ORDERLY_E_INTERNAL', 'the runner failed unexpectedly');
}

/** A job this runner would not run: reported (the control room dead-letters the run it names), then dropped. */
export async function reportRefusal(reports: Pick<ReportPort, 'refused'>, log: Logger, jobId: string | undefined, refusal: RefuseJob): Promise<JobFate> {
  log.warn({ jobId, code: refusal.code }, 'job refused; the bot was not run');
  await reports.refused(jobId ?? '(none)', refusal.runId, refusal.code, refusal.reason);
  return { kind: 'drop', code: refusal.code };
}

export interface AttemptReport {
  claim: Pick<ClaimResponse, 'runId' | 'attempt' | 'fence' | 'final'>;
  runLog: RunLog;
  startedAt: number;
  log: Logger;
  /** What the attempt's sandbox refused, counted as it happens (by the run step). */
  denials: SandboxDenials;
  now?: () => number;
}

/** Step 7, success: the result (masked of secrets, with its flags) and the log lines not sent yet. */
export async function reportSucceeded(reports: Pick<ReportPort, 'finished'>, attempt: AttemptReport, result: ResultLeaving): Promise<JobFate> {
  const now = attempt.now ?? Date.now;
  const { runId, attempt: n, fence } = attempt.claim;
  await reports.finished(runId, n, { ok: true, ...result }, true, now() - attempt.startedAt, attempt.runLog.rest(), fence, { ...attempt.denials });
  attempt.log.info({ ms: now() - attempt.startedAt }, 'run succeeded');
  return { kind: 'done', ok: true };
}

/**
 * Step 7, failure: the attempt's error, redacted for the run's own values (a cancelled run's is
 * its own non-retryable code), final when it is not retryable or no attempt may follow. The job
 * then fails for good (not retryable) or is retried by BullMQ, under the code alone: the cause's
 * message may hold PHI, and BullMQ keeps failure reasons in Redis.
 */
export async function reportFailed(reports: Pick<ReportPort, 'finished'>, attempt: AttemptReport, err: unknown, cancelled: boolean): Promise<JobFate> {
  const now = attempt.now ?? Date.now;
  const { runId, attempt: n, fence, final } = attempt.claim;
  const error = cancelled
    ? new OrderlyError('ORDERLY_E_RUN_CANCELLED', 'the run was cancelled; its bot was aborted').toJSON()
    : attempt.runLog.redactError(toErrorBody(err));
  const isFinal = !error.retryable || final;
  attempt.runLog.runner('error', `attempt ${n} failed: ${error.code}`);
  await reports.finished(runId, n, { ok: false, error }, isFinal, now() - attempt.startedAt, attempt.runLog.rest(), fence, { ...attempt.denials });
  attempt.log.warn({ code: error.code, final: isFinal }, 'run attempt failed');
  return error.retryable ? { kind: 'retry', code: error.code } : { kind: 'drop', code: error.code };
}
