import type { Logger } from '@orderly/shared';
import { Queryable } from '../db/db';
import { AuditLog } from './audit';
import { KeyedHasher } from './keyed-hash';

/**
 * Audit events of the runner side of a run (invariant 5): claims, credential leases, results,
 * refused jobs and Vault unwrap failures. They are not one HTTP request each (results and refusals
 * arrive on the reports queue), so the generic request hook does not see them; the runner API
 * routes that lead here are excluded from it on success (`audit-hook.ts`).
 *
 * No PHI and no secret: run ids, attempt numbers, runner ids and error codes only. Identifiers that
 * could carry business data or grant something (job ids = idempotency keys, token accessors) are
 * keyed hashes. Inputs, results, messages and reasons never appear.
 */
export class RunnerEvents {
  constructor(
    private readonly audit: AuditLog,
    private readonly hash: KeyedHasher,
    private readonly log?: Logger,
  ) {}

  /** A runner of `segment` claimed attempt `attempt` of a run (and received its input). */
  async claimed(run: { runId: string; segment: string; attempt: number; runnerId: string; credentials: boolean }, tx?: Queryable): Promise<void> {
    await this.audit.append(
      {
        actor: `runner:${run.segment}`,
        action: 'run.claim',
        target: run.runId,
        outcome: 'success',
        details: { segment: run.segment, attempt: run.attempt, runnerId: run.runnerId, credentials: run.credentials },
      },
      tx,
    );
  }

  /** The runner logged in to Vault for a run and recorded its token's accessor (hashed here). */
  async leaseRecorded(lease: { runId: string; segment: string; attempt: number; accessor: string }, tx?: Queryable): Promise<void> {
    await this.audit.append(
      {
        actor: `runner:${lease.segment}`,
        action: 'credential.lease',
        target: lease.runId,
        outcome: 'success',
        details: { segment: lease.segment, attempt: lease.attempt, accessor: this.hash(lease.accessor) },
      },
      tx,
    );
  }

  /**
   * An attempt's outcome from the reports queue. A Vault unwrap failure (the wrapping token was
   * used, expired or not minted for the bot's path: someone else may have seen the SecretID)
   * reaches the control room as the attempt's error code and is recorded as a security event too.
   */
  async resultRecorded(result: {
    runId: string;
    attempt: number;
    runnerId: string;
    outcome: 'succeeded' | 'failed';
    status: string;
    final: boolean;
    applied: boolean;
    errorCode: string | undefined;
    /** What the run's sandbox refused, as its runner counted it (absent from older runners). */
    /** Connections the run's egress proxy refused (the runner's count, absent when none). */
    sandboxDenials?: number | undefined;
  }): Promise<void> {
    const actor = `runner:${result.runnerId}`;
    await this.audit.append({
      actor,
      action: 'run.result',
      target: result.runId,
      outcome: result.outcome === 'succeeded' ? 'success' : 'failure',
      details: {
        attempt: result.attempt,
        status: result.status,
        final: result.final,
        applied: result.applied,
        code: result.errorCode ?? null,
        // Only when a runner counted some: the record of a run that met no refusal stays as it was.
        ...(result.sandboxDenials ? { egressRefused: result.sandboxDenials } : {}),
      },
    });
    if (result.errorCode === 'ORDERLY_E_VAULT_WRAP_INVALID') {
      this.log?.error(
        { event: 'security.vault_unwrap_failed', runId: result.runId, attempt: result.attempt },
        'a runner could not unwrap the SecretID of a run',
      );
      await this.audit.append({
        actor,
        action: 'security.vault_unwrap_failed',
        target: result.runId,
        outcome: 'failure',
        details: { attempt: result.attempt, code: result.errorCode },
      });
    }
  }

  /** A runner refused a job (forged, expired, wrong segment): the bot was not run. */
  async jobRefused(refusal: { jobId: string; runId: string | undefined; runnerId: string; errorCode: string }): Promise<void> {
    await this.audit.append({
      actor: `runner:${refusal.runnerId}`,
      action: 'job.refused',
      target: refusal.runId ?? `job:${this.hash(refusal.jobId)}`,
      outcome: 'failure',
      // The job id is the run's idempotency key: hashed, and the message is not kept.
      details: { code: refusal.errorCode.slice(0, 100), jobId: this.hash(refusal.jobId), signed: refusal.runId !== undefined },
    });
  }

  /**
   * A runner refused a run's genuine job that was found on another segment's queue: someone copied
   * it across segments. A security event; the run itself is left alone.
   */
  async foreignRefusal(refusal: { runId: string; runner: string; runnerSegment: string; errorCode: string }): Promise<void> {
    this.log?.error(
      { event: 'security.job_crossed_segments', runId: refusal.runId, runnerSegment: refusal.runnerSegment },
      "a run's job was found on another segment's queue",
    );
    await this.audit.append({
      actor: refusal.runner,
      action: 'security.job_crossed_segments',
      target: refusal.runId,
      outcome: 'failure',
      details: { runnerSegment: refusal.runnerSegment, code: refusal.errorCode.slice(0, 100) },
    });
  }

  /**
   * A claim refused because another attempt of the run holds a live lease: a duplicate delivery of
   * the run's job (an envelope re-added under another job id, or a live job declared stalled).
   * Logged here; its audit event is the request hook's refusal of `run.claim` (code and attempt).
   */
  claimRefused(refusal: { runId: string; runnerId: string; activeAttempt: number; code: string }): void {
    this.log?.warn(
      { event: 'run.claim_refused', runId: refusal.runId, runnerId: refusal.runnerId, activeAttempt: refusal.activeAttempt, code: refusal.code },
      'claim refused: another attempt of the run is alive',
    );
  }
}
