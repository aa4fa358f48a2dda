import {
  ATTEMPT_LEASE_DEFAULT_MS,
  ClaimAnswer,
  CredentialGrant,
  IdempotencyKey,
  isOrderlyError,
  OrderlyError,
  PackageDigest,
  RunId,
  SegmentName,
} from '@orderly/shared';
import type { RunnerEvents } from '../audit/runner-events';
import { CredentialBroker } from '../credentials/broker';
import { Db } from '../db/db';
import type { DeadLettering } from '../dlq/dead-letter';
import { Packages } from '../packages/packages';
import { AtRestCipher } from '../keys/at-rest';
import { backoffDelayMs, decideClaim } from './backoff';
import { assertCurrentAttempt, newFence, renewLease } from './fencing';
import { backToWaiting, startAttempt } from './outcome';
import { inputAad, RunRow } from './repository';

export interface RunClaimsDeps {
  db: Db;
  packages: Packages;
  cipher: AtRestCipher;
  credentials: CredentialBroker;
  deadLettering: DeadLettering;
  /** Audit events of claims and leases; optional so tests that need none can leave it out. */
  runnerEvents?: RunnerEvents | undefined;
}

/** Claims: a runner takes a run for an attempt (fenced, leased), renews its lease, records its Vault lease. */
export class RunClaims {
  constructor(private readonly deps: RunClaimsDeps) {}

  /**
   * A runner of the run's segment takes the run for a new attempt and receives its input. Only a
   * waiting run, or an active one (whose previous runner died), can be claimed. The control room
   * numbers attempts (see `decideClaim`): the claim that finds the latest attempt unfinished
   * records it lost and, with attempts left, answers "retry in" the run's backoff instead of
   * starting one; without, it dead-letters the run. Serialised per run by the row lock.
   */
  async claim(id: string, segment: SegmentName, runnerId: string, leaseMs: number = ATTEMPT_LEASE_DEFAULT_MS): Promise<ClaimAnswer> {
    const decided = await this.deps.db.transaction(async (tx) => {
      // The latest attempt's lease, in the database's clock (the one that set it): > 0 while alive.
      const rows = await tx.query<RunRow & { latest_unfinished: boolean; lease_remaining_ms: number | null }>(
        `SELECT r.*, a.run_id IS NOT NULL AS latest_unfinished,
                (EXTRACT(EPOCH FROM (a.lease_expires_at - now())) * 1000)::double precision AS lease_remaining_ms
         FROM runs r LEFT JOIN run_attempts a ON a.run_id = r.id AND a.attempt = r.attempts AND a.finished_at IS NULL
         WHERE r.id = $1 FOR UPDATE OF r`,
        [id],
      );
      const row = rows[0];
      if (!row) throw new OrderlyError('ORDERLY_E_NOT_FOUND', `no run ${id}`);
      if (row.segment !== segment) throw new OrderlyError('ORDERLY_E_FORBIDDEN', `this runner serves ${segment}, not the run's segment`);
      if (row.status !== 'waiting' && row.status !== 'active') {
        throw new OrderlyError('ORDERLY_E_RUN_NOT_CLAIMABLE', `run is ${row.status} in segment ${row.segment}`, { status: row.status });
      }
      // A waiting run of a paused or cancelled batch is not started (an active one goes on). The
      // batch row is share-locked, so a pause committed after this claim's check waits for it.
      // A run in two batches (overlapping files) waits while either is held.
      if (row.status === 'waiting') {
        const batches = await tx.query<{ state: string }>(
          'SELECT b.state FROM batch_items i JOIN batches b ON b.id = i.batch_id WHERE i.run_id = $1 FOR SHARE OF b',
          [id],
        );
        const held = batches.filter((b) => b.state !== 'open');
        if (held[0]) throw new OrderlyError('ORDERLY_E_RUN_NOT_CLAIMABLE', `the run's batch is ${held[0].state}`, { status: row.status, batch: held[0].state });
      }
      const decision = decideClaim({
        attempts: row.attempts,
        maxAttempts: row.max_attempts,
        latestUnfinished: row.latest_unfinished,
        leaseRemainingMs: row.lease_remaining_ms ?? 0,
      });
      switch (decision.kind) {
        case 'defer':
        case 'exhausted': {
          const error = new OrderlyError('ORDERLY_E_ATTEMPT_LOST', `attempt ${decision.lostAttempt} ended without a report (its runner died or stalled)`, {
            attempt: decision.lostAttempt,
          }).toJSON();
          if (decision.kind === 'defer') {
            await backToWaiting(tx, this.deps.cipher, id, { attempt: decision.lostAttempt, error });
            return { decision, row };
          }
          return { decision, row, deadLetter: await this.deps.deadLettering.within(tx, id, { attempt: decision.lostAttempt, error }) };
        }
        case 'spent':
        case 'busy': // nothing changes: the live attempt goes on
          return { decision, row };
        case 'start': {
          // Opened before the attempt is recorded: an input that cannot be opened now (Vault
          // down, key version retired) starts no attempt, so it is not counted as a lost one.
          const input = (await this.deps.cipher.open(row.input_sealed, inputAad(row.id))) as Record<string, unknown>;
          await startAttempt(tx, id, decision.attempt);
          // A run requeued from the dead letters numbers its attempts on from the last one (its
          // history is kept) and keeps its step checkpoints.
          // A new claim, a new fencing token: whatever the attempt's number held before is void.
          const fence = newFence();
          await tx.query(
            `INSERT INTO run_attempts (run_id, attempt, runner_id, fence, lease_ms, lease_expires_at) VALUES ($1, $2, $3, $4, $5::integer, now() + $5::integer * interval '1 millisecond')
             ON CONFLICT (run_id, attempt) DO UPDATE SET runner_id = EXCLUDED.runner_id, claimed_at = now(), finished_at = NULL, outcome = NULL, error = NULL,
               fence = EXCLUDED.fence, lease_ms = EXCLUDED.lease_ms, lease_expires_at = EXCLUDED.lease_expires_at`,
            [id, decision.attempt, runnerId, fence, leaseMs],
          );
          return { decision, row, input, fence };
        }
      }
    });
    const { decision, row } = decided;
    switch (decision.kind) {
      case 'busy':
        // Recorded (logged here, audited by the request hook with the attempt): a duplicate
        // delivery is a sign of trouble (a replayed envelope, a lost job lock).
        this.deps.runnerEvents?.claimRefused({ runId: id, runnerId, activeAttempt: decision.activeAttempt, code: 'ORDERLY_E_RUN_ALREADY_ACTIVE' });
        throw new OrderlyError('ORDERLY_E_RUN_ALREADY_ACTIVE', `attempt ${decision.activeAttempt} of the run holds a live lease; this claim is refused`, {
          activeAttempt: decision.activeAttempt,
          retryInMs: decision.retryInMs,
        });
      case 'defer':
        return { runId: row.id as RunId, lostAttempt: decision.lostAttempt, retryInMs: backoffDelayMs(decision.lostAttempt) };
      case 'exhausted':
        await this.deps.deadLettering.publish(decided.deadLetter);
        throw new OrderlyError('ORDERLY_E_RUN_NOT_CLAIMABLE', `the run's last attempt was lost; it is dead-lettered`, { status: 'dead_lettered' });
      case 'spent':
        throw new OrderlyError('ORDERLY_E_RUN_NOT_CLAIMABLE', 'the run has no attempts left', { status: row.status });
      case 'start':
        break;
    }
    const input = decided.input!;
    // SecretIDs are issued when a run starts, never when it is queued: queue waits and retries
    // must not outlive or reuse them.
    const pkg = await this.deps.packages.byDigest(row.digest as PackageDigest);
    let credentials: CredentialGrant | undefined;
    try {
      // The role of the run's own version: it leases exactly what that version declares.
      const role = pkg ? await this.deps.packages.vaultRoleOf(pkg) : undefined;
      credentials = role ? await this.deps.credentials.grant(role) : undefined;
    } catch (err) {
      await this.failStartedAttempt(row, decision, err);
      throw err;
    }
    await this.deps.runnerEvents?.claimed({ runId: id, segment, attempt: decision.attempt, runnerId, credentials: credentials !== undefined });
    return {
      runId: row.id as RunId,
      attempt: decision.attempt,
      final: decision.final,
      idempotencyKey: row.idempotency_key as IdempotencyKey,
      input,
      fence: decided.fence!,
      leaseMs,
      ...(credentials ? { credentials } : {}),
    };
  }

  /**
   * An attempt recorded at claim whose start then failed (Vault sealed or down while issuing its
   * SecretID) ends failed with that error, like any system failure, rather than being left to
   * count as lost: retried after the backoff, or dead-lettered when it was the last.
   */
  private async failStartedAttempt(row: RunRow, decision: { attempt: number; final: boolean }, err: unknown): Promise<void> {
    const error = isOrderlyError(err) ? err.toJSON() : new OrderlyError('ORDERLY_E_INTERNAL', 'the run could not be started').toJSON();
    if (decision.final || !error.retryable) {
      await this.deps.deadLettering.deadLetter(row.id, { attempt: decision.attempt, error });
      return;
    }
    await this.deps.db.transaction((tx) => backToWaiting(tx, this.deps.cipher, row.id, { attempt: decision.attempt, error }));
  }

  /** Renews the lease of the run's current attempt (see `fencing.ts`); the runner calls it every third of the lease. */
  renew(id: string, segment: SegmentName, attempt: number, fence: string): Promise<{ leaseMs: number }> {
    return renewLease(this.deps.db, id, segment, attempt, fence);
  }

  /** Records the accessor of an attempt's Vault token, for the run's own segment and current claim only. */
  async recordLease(id: string, segment: SegmentName, attempt: number, fence: string, accessor: string): Promise<void> {
    const rows = await this.deps.db.query(
      `INSERT INTO run_leases (run_id, attempt, accessor)
       SELECT r.id, $3, $4 FROM runs r JOIN run_attempts a ON a.run_id = r.id AND a.attempt = $3 AND a.fence = $5 AND a.finished_at IS NULL
       WHERE r.id = $1 AND r.segment = $2 AND r.status = 'active' AND r.attempts = $3
       ON CONFLICT (run_id, attempt) DO UPDATE SET accessor = EXCLUDED.accessor RETURNING run_id`,
      [id, segment, attempt, accessor, fence],
    );
    if (rows.length === 0) {
      await assertCurrentAttempt(this.deps.db, id, segment, attempt, fence);
      throw new OrderlyError('ORDERLY_E_RUN_NOT_CLAIMABLE', 'only an active run of this segment can record a lease');
    }
    await this.deps.runnerEvents?.leaseRecorded({ runId: id, segment, attempt, accessor });
  }
}
