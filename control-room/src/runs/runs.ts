import { ATTEMPT_LEASE_DEFAULT_MS, ClaimAnswer, CreateRunRequest, InputSchema, LogLine, RunStatus, RunView, SegmentName, Signer } from '@orderly/shared';
import type { Logger } from '@orderly/shared';
import type { RunnerEvents } from '../audit/runner-events';
import { CredentialBroker } from '../credentials/broker';
import { Db, Queryable } from '../db/db';
import type { DeadLettering } from '../dlq/dead-letter';
import { Packages } from '../packages/packages';
import { AtRestCipher, rewrapTable, SEALED_AT_REST } from '../keys/at-rest';
import { RunClaims } from './claim';
import { CreateOptions, ReleaseGate, RunCreation } from './creation';
import { AttemptOutcome, backToWaiting, finishRun, Moved } from './outcome';
import { LostAttemptSweep, LostAttemptSweepResult } from './lost-attempts';
import { RunQueues } from './queues';
import { RunRepository } from './repository';
import { RunSteps } from './steps';

export { DEFAULT_IDEMPOTENCY_WINDOW_HOURS, ENQUEUE_TIMEOUT_MS } from './creation';

export interface RunsDeps {
  db: Db;
  packages: Packages;
  queues: RunQueues;
  cipher: AtRestCipher;
  signer: Signer;
  segments: readonly SegmentName[];
  jobTtlSeconds: number;
  /** How long after a run ended its idempotency key still returns it (default 7 days). */
  idempotencyWindowHours?: number;
  credentials: CredentialBroker;
  /** The one way a run becomes dead-lettered (state, DLQ entry and alert). */
  deadLettering: DeadLettering;
  /** Audit events of claims and leases; optional so tests that need none can leave it out. */
  runnerEvents?: RunnerEvents;
  /** Required: a wiring mistake must not skip the gate (tests pass an explicit fake). */
  releaseGate: ReleaseGate;
  /** Bound on queueing new runs' jobs before a create answers (they are stored either way). */
  enqueueTimeoutMs?: number;
  log?: Logger;
}

/**
 * Runs, a facade over what they are made of: creation (`creation.ts`), claims (`claim.ts`),
 * outcomes (`outcome.ts`, the only writer of a run's status), queries (`repository.ts`) and
 * step checkpoints (`steps.ts`). Dead-lettering is `dlq/dead-letter.ts`.
 */
export class Runs {
  /** Step checkpoints of active runs (the runner API's step routes). */
  readonly steps: RunSteps;
  readonly repository: RunRepository;
  private readonly creation: RunCreation;
  private readonly claims: RunClaims;
  private readonly lostAttempts: LostAttemptSweep;

  constructor(private readonly deps: RunsDeps) {
    this.steps = new RunSteps(deps.db, deps.cipher);
    this.repository = new RunRepository(deps.db, deps.cipher);
    this.creation = new RunCreation({ ...deps, repository: this.repository });
    this.claims = new RunClaims(deps);
    this.lostAttempts = new LostAttemptSweep({
      db: deps.db,
      cipher: deps.cipher,
      queues: deps.queues,
      deadLettering: deps.deadLettering,
      enqueueFresh: (ids, delayMs) => this.creation.enqueueFresh(ids, delayMs),
      log: deps.log,
    });
  }

  create(requests: readonly CreateRunRequest[], options?: CreateOptions): Promise<{ run: RunView; created: boolean }[]> {
    return this.creation.create(requests, options);
  }

  /** The input schema a run of this request would be checked against (the package it would run). */
  async inputSchemaOf(request: Pick<CreateRunRequest, 'bot' | 'version' | 'segment'>): Promise<InputSchema> {
    return (await this.creation.resolvePackage(request)).manifest.input;
  }

  /** Queues waiting runs whose job never reached Redis (Redis was down at creation). */
  enqueuePending(olderThanMs = 5000): Promise<number> {
    return this.creation.enqueuePending(olderThanMs);
  }

  /** Queues a freshly signed job for each of these runs that is waiting (a requeued dead letter). */
  enqueueFresh(ids: readonly string[], delayMs?: number): Promise<void> {
    return this.creation.enqueueFresh(ids, delayMs);
  }

  /** Records lost the attempts whose lease lapsed with no report and no job left to claim them (see `lost-attempts.ts`). */
  sweepLostAttempts(): Promise<LostAttemptSweepResult> {
    return this.lostAttempts.sweep();
  }

  get(id: string): Promise<RunView> {
    return this.repository.get(id);
  }

  list(filter: { status?: RunStatus | undefined; limit: number; segments?: readonly string[] | undefined }): Promise<RunView[]> {
    return this.repository.list(filter);
  }

  readPhi(id: string): Promise<{ input: unknown; result: unknown }> {
    return this.repository.readPhi(id);
  }

  logs(id: string): Promise<LogLine[]> {
    return this.repository.logs(id);
  }

  claim(id: string, segment: SegmentName, runnerId: string, leaseMs: number = ATTEMPT_LEASE_DEFAULT_MS): Promise<ClaimAnswer> {
    return this.claims.claim(id, segment, runnerId, leaseMs);
  }

  renew(id: string, segment: SegmentName, attempt: number, fence: string): Promise<{ leaseMs: number }> {
    return this.claims.renew(id, segment, attempt, fence);
  }

  recordLease(id: string, segment: SegmentName, attempt: number, fence: string, accessor: string): Promise<void> {
    return this.claims.recordLease(id, segment, attempt, fence, accessor);
  }

  /** Records an attempt's end that ends the run (see `outcome.ts`; dead-lettering is `DeadLettering`'s). */
  finish(tx: Queryable, id: string, status: 'succeeded' | 'failed', outcome: AttemptOutcome): Promise<Moved> {
    return finishRun(tx, this.deps.cipher, id, status, outcome);
  }

  /** Records a failed attempt with attempts left: the run goes back to waiting. */
  retryLater(tx: Queryable, id: string, outcome: AttemptOutcome): Promise<Moved> {
    return backToWaiting(tx, this.deps.cipher, id, outcome);
  }

  /**
   * Rewraps the data keys of everything sealed at rest (run inputs and results, step results,
   * screenshots, schedule inputs) to the newest Transit key version, in batches, while the
   * service keeps running. Returns how many boxes moved.
   */
  async rewrapAll(batchSize = 200): Promise<number> {
    if (!this.deps.cipher.rewrap) return 0;
    this.deps.cipher.retireDataKey?.();
    let moved = 0;
    for (const table of SEALED_AT_REST) moved += await rewrapTable(this.deps.db, this.deps.cipher, table, batchSize);
    return moved;
  }
}
