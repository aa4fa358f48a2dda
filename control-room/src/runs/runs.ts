import { randomUUID } from 'node:crypto';
import {
  assertMaskable, ATTEMPT_LEASE_DEFAULT_MS, BotName, canonicalJson, canTransition, declaredPhiFromInput, ClaimAnswer, CreateRunRequest, CredentialGrant, ErrorBody, IdempotencyKey, isOrderlyError, JobPayload, LogLine, OrderlyError,
  PackageDigest, RUN_STATUSES, RunId, RunStatus, RunView, SegmentName, Signer, signJobWith, validateInput,
} from '@orderly/shared';
import type { RunnerEvents } from '../audit/runner-events';
import { CredentialBroker } from '../credentials/broker';
import { Db, Queryable } from '../db/db';
import { Packages, StoredPackage } from '../packages/packages';
import { AtRestBox, AtRestCipher, rewrapTable, SEALED_AT_REST } from './at-rest';
import { backoffDelayMs, decideClaim } from './backoff';
import { assertCurrentAttempt, newFence, renewLease } from './fencing';
import { RunSteps } from './steps';
import { dlqQueueName, RunQueues, RunJobToAdd } from './queues';

interface RunRow {
  id: string;
  idempotency_key: string;
  request_mac: string;
  bot_name: string;
  bot_version: string;
  digest: string;
  segment: string;
  status: RunStatus;
  input_sealed: AtRestBox;
  attempts: number;
  max_attempts: number;
  result_sealed: AtRestBox | null;
  error: ErrorBody | null;
  publisher_key_id?: string;
  flags?: string[];
  created_at: Date;
  started_at: Date | null;
  finished_at: Date | null;
}

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
  /** Audit events of claims and leases; optional so tests that need none can leave it out. */
  runnerEvents?: RunnerEvents;
  /** Refuses runs of packages a runner of the segment would refuse (revoked key, no release for prod). */
  releaseGate?: {
    gate(pkg: StoredPackage, segment: SegmentName): Promise<void>;
    /** The version a run without one takes in a segment: the newest released for its channel. */
    defaultFor?(name: BotName, segment: SegmentName): Promise<StoredPackage>;
  };
  /** Raises the dead-letter alert, in the transaction that dead-letters a run at claim time. */
  onDeadLettered?: (tx: Queryable, runId: string, errorCode: string) => Promise<void>;
}

export const DEFAULT_IDEMPOTENCY_WINDOW_HOURS = 7 * 24;
const inputAad = (runId: string) => `run-input:${runId}`;
const resultAad = (runId: string) => `run-result:${runId}`;
/** States a run may move to `to` from, straight from the transition table. */
const fromStates = (to: RunStatus): RunStatus[] => RUN_STATUSES.filter((s) => canTransition(s, to));

/** Runs: creation with idempotency keys, signed jobs on segment queues, claims and outcomes. */
export class Runs {
  /** Step checkpoints of active runs (the runner API's step routes). */
  readonly steps: RunSteps;

  constructor(private readonly deps: RunsDeps) {
    this.steps = new RunSteps(deps.db, deps.cipher);
  }

  private async view(row: RunRow, withResult: boolean): Promise<RunView> {
    const view: RunView = {
      id: row.id as RunId,
      idempotencyKey: row.idempotency_key as IdempotencyKey,
      bot: row.bot_name as BotName,
      version: row.bot_version as RunView['version'],
      digest: row.digest as PackageDigest,
      segment: row.segment as SegmentName,
      status: row.status,
      attempts: row.attempts,
      createdAt: row.created_at.toISOString(),
      startedAt: row.started_at?.toISOString() ?? null,
      finishedAt: row.finished_at?.toISOString() ?? null,
    };
    if (row.error) view.error = row.error;
    if (row.flags && row.flags.length > 0) view.flags = row.flags;
    if (withResult && row.result_sealed) view.result = await this.deps.cipher.open(row.result_sealed, resultAad(row.id));
    return view;
  }

  /**
   * Creates runs. Every request is validated before anything is stored; then all new runs are
   * inserted in one transaction. A key seen before returns its first run, unless it was used
   * for another bot, segment or input (409). Jobs are queued after commit; a run whose job could
   * not be queued stays `waiting` with no `enqueued_at` and is queued by `enqueuePending`.
   */
  async create(requests: readonly CreateRunRequest[]): Promise<{ run: RunView; created: boolean }[]> {
    const resolved = new Map<string, Promise<StoredPackage>>();
    const gated = new Map<string, Promise<void>>();
    const prepared: { id: string; key: IdempotencyKey; mac: string; pkg: StoredPackage; segment: SegmentName; input: Record<string, unknown>; sealed: AtRestBox }[] = [];
    for (const request of requests) {
      const cacheKey = `${request.bot}@${request.version ?? ''}|${request.segment ?? ''}`;
      if (!resolved.has(cacheKey)) resolved.set(cacheKey, this.resolvePackage(request));
      const pkg = await resolved.get(cacheKey)!;
      const segment = request.segment ?? pkg.manifest.segments[0]!;
      if (!this.deps.segments.includes(segment)) {
        throw new OrderlyError('ORDERLY_E_SEGMENT_UNKNOWN', `segment ${segment} is not served by this control room`, { segment });
      }
      if (!pkg.manifest.segments.includes(segment)) {
        throw new OrderlyError('ORDERLY_E_SEGMENT_UNKNOWN', `${pkg.view.name} may not run in segment ${segment}`, { segment, bot: pkg.view.name });
      }
      const gateKey = `${pkg.view.digest}|${segment}`;
      if (!gated.has(gateKey)) gated.set(gateKey, this.deps.releaseGate?.gate(pkg, segment) ?? Promise.resolve());
      await gated.get(gateKey);
      const input = validateInput(pkg.manifest.input, request.input);
      // A declared PHI value too short to mask could not be kept out of logs: refused up front.
      assertMaskable({ phi: declaredPhiFromInput(pkg.manifest.phi, input) });
      const id = randomUUID();
      const key = request.idempotencyKey ?? (`run-${id}` as IdempotencyKey);
      const mac = this.deps.cipher.mac(canonicalJson([pkg.view.name, pkg.view.version, segment, input]));
      prepared.push({ id, key, mac, pkg, segment, input, sealed: await this.deps.cipher.seal(input, inputAad(id)) });
    }

    // A batch is all-or-nothing (a reused key rolls back the runs inserted with it), so it needs a
    // transaction; a single run is one INSERT, atomic by itself, and skips BEGIN/COMMIT (two
    // database round trips on the path from request to queued job).
    const insertNew = async (tx: Queryable, batch: readonly (typeof prepared)[number][]) => {
      const values: unknown[] = [];
      const tuples = batch.map((p, i) => {
        values.push(p.id, p.key, p.mac, p.pkg.view.name, p.pkg.view.version, p.pkg.view.digest, p.segment, JSON.stringify(p.sealed), p.pkg.manifest.attempts);
        const b = i * 9;
        return `($${b + 1}, $${b + 2}, $${b + 3}, $${b + 4}, $${b + 5}, $${b + 6}, $${b + 7}, $${b + 8}, $${b + 9}, 'waiting')`;
      });
      const inserted = await tx.query<RunRow>(
        `INSERT INTO runs (id, idempotency_key, request_mac, bot_name, bot_version, digest, segment, input_sealed, max_attempts, status)
         VALUES ${tuples.join(', ')} ON CONFLICT (idempotency_key) DO NOTHING RETURNING *`,
        values,
      );
      const createdIds = new Set(inserted.map((r) => r.id));
      const existingKeys = batch.filter((p) => !createdIds.has(p.id)).map((p) => p.key);
      const existing = existingKeys.length ? await tx.query<RunRow>('SELECT * FROM runs WHERE idempotency_key = ANY($1)', [existingKeys]) : [];
      return { inserted, existing };
    };
    const insert = async (tx: Queryable) => {
      const first = await insertNew(tx, prepared);
      let { inserted, existing } = first;
      // A key whose run ended longer ago than the idempotency window is free again: the old run
      // keeps its row under a retired key (`~` never occurs in a client's key) and a new run starts.
      const retired = existing.length ? await this.retireExpiredKeys(tx, existing.map((r) => r.idempotency_key)) : [];
      if (retired.length) {
        const again = await insertNew(tx, prepared.filter((p) => retired.some((r) => r.key === p.key)));
        inserted = [...inserted, ...again.inserted];
        existing = [...existing.filter((r) => !retired.some((x) => x.key === r.idempotency_key)), ...again.existing];
        retiredKeys.push(...retired);
      }
      const createdIds = new Set(inserted.map((r) => r.id));
      const byKey = new Map([...inserted, ...existing].map((r) => [r.idempotency_key, r]));
      return prepared.map((p) => {
        const row = byKey.get(p.key)!;
        if (row.request_mac !== p.mac) {
          throw new OrderlyError('ORDERLY_E_IDEMPOTENCY_KEY_REUSED', `idempotency key ${p.key} belongs to a run with another bot, segment or input`, { runId: row.id });
        }
        return { row, created: createdIds.has(row.id) && row.id === p.id };
      });
    };
    const retiredKeys: { key: string; segment: string }[] = [];
    const inserting = prepared.length === 1 ? insert(this.deps.db) : this.deps.db.transaction(insert);
    inserting.catch(() => undefined); // awaited below; not an unhandled rejection while signing

    // Signing (Ed25519, one envelope per job) is the largest CPU cost of a batch: do it while the
    // database inserts, yielding now and then so its round trips go on. The values are the ones
    // being inserted; jobs of runs that turn out to exist already are never sent.
    const signed = new Map<string, RunJobToAdd>();
    const now = Date.now();
    for (const [i, p] of prepared.entries()) {
      if (i > 0 && i % 100 === 0) await new Promise((resolve) => setImmediate(resolve));
      const { name, version, digest, publisherKeyId } = p.pkg.view;
      signed.set(p.id, await this.signedJob({ id: p.id, key: p.key, segment: p.segment, name, version, digest, publisherKeyId, attempts: p.pkg.manifest.attempts }, now));
    }
    const outcome = await inserting;

    // The retired runs' jobs (completed or failed, kept by BullMQ for a while) would make BullMQ
    // ignore the new jobs under the same ids.
    for (const { key, segment } of retiredKeys) await this.deps.queues.removeFinished(segment as SegmentName, this.deps.queues.jobIdOf(key));
    const fresh = outcome.filter((o) => o.created).map((o) => o.row);
    await this.enqueue(fresh, signed).catch(() => undefined);
    return Promise.all(outcome.map(async (o) => ({ run: await this.view(o.row, false), created: o.created })));
  }

  /**
   * The package a request runs: the named version, or else the newest version released for the
   * channel of the request's segment (without a segment: the first segment the bot's newest
   * upload names, which only picks the segment, never the version).
   */
  private async resolvePackage(request: CreateRunRequest): Promise<StoredPackage> {
    if (request.version !== undefined || !this.deps.releaseGate?.defaultFor) return this.deps.packages.resolve(request.bot, request.version);
    const segment = request.segment ?? (await this.deps.packages.resolve(request.bot)).manifest.segments[0]!;
    if (!this.deps.segments.includes(segment)) throw new OrderlyError('ORDERLY_E_SEGMENT_UNKNOWN', `segment ${segment} is not served by this control room`, { segment });
    return this.deps.releaseGate.defaultFor(request.bot, segment);
  }

  /**
   * Moves the runs holding `keys` that ended (succeeded, failed, cancelled or discarded) longer ago
   * than the idempotency window to a retired key. A dead letter keeps its key: it may be requeued.
   */
  private async retireExpiredKeys(tx: Queryable, keys: readonly string[]): Promise<{ key: string; segment: string }[]> {
    const rows = await tx.query<{ key: string; segment: string }>(
      `UPDATE runs SET idempotency_key = idempotency_key || '~' || id::text, updated_at = now()
       WHERE idempotency_key = ANY($1) AND status = ANY($2) AND finished_at < now() - ($3::double precision * interval '1 hour')
       RETURNING split_part(idempotency_key, '~', 1) AS key, segment`,
      [keys, ['succeeded', 'failed', 'cancelled', 'discarded'], this.deps.idempotencyWindowHours ?? DEFAULT_IDEMPOTENCY_WINDOW_HOURS],
    );
    return rows;
  }

  private async signedJob(
    run: { id: string; key: string; segment: string; name: string; version: string; digest: string; publisherKeyId: string | undefined; attempts: number },
    now: number,
  ): Promise<RunJobToAdd> {
    const payload: JobPayload = {
      v: 1,
      runId: run.id as RunId,
      jobId: this.deps.queues.jobIdOf(run.key),
      segment: run.segment as SegmentName,
      bot: { name: run.name as BotName, version: run.version as RunView['version'], digest: run.digest as PackageDigest },
      publisherKeyId: run.publisherKeyId as JobPayload['publisherKeyId'],
      issuedAt: new Date(now).toISOString(),
      notAfter: new Date(now + this.deps.jobTtlSeconds * 1000).toISOString(),
    };
    return { segment: payload.segment, jobId: payload.jobId, data: await signJobWith(payload, this.deps.signer), attempts: run.attempts };
  }

  /** Queues the jobs of `rows`, signing those not already signed, and marks the runs enqueued. */
  private async enqueue(rows: readonly RunRow[], presigned: ReadonlyMap<string, RunJobToAdd> = new Map()): Promise<void> {
    if (rows.length === 0) return;
    const unsigned = rows.filter((r) => !presigned.has(r.id));
    const publisherKeys = unsigned.length ? await this.publisherKeyIds(unsigned.map((r) => r.digest)) : new Map<string, string>();
    const now = Date.now();
    const jobs: RunJobToAdd[] = await Promise.all(rows.map(
      (row) =>
        presigned.get(row.id) ??
        this.signedJob(
          { id: row.id, key: row.idempotency_key, segment: row.segment, name: row.bot_name, version: row.bot_version, digest: row.digest, publisherKeyId: publisherKeys.get(row.digest), attempts: row.max_attempts },
          now,
        ),
    ));
    await this.deps.queues.add(jobs);
    await this.deps.db.query('UPDATE runs SET enqueued_at = now() WHERE id = ANY($1)', [rows.map((r) => r.id)]);
  }

  private async publisherKeyIds(digests: string[]): Promise<Map<string, string>> {
    const rows = await this.deps.db.query<{ digest: string; publisher_key_id: string }>(
      'SELECT digest, publisher_key_id FROM packages WHERE digest = ANY($1)', [[...new Set(digests)]],
    );
    return new Map(rows.map((r) => [r.digest, r.publisher_key_id]));
  }

  /** Queues waiting runs whose job never reached Redis (Redis was down at creation). */
  async enqueuePending(olderThanMs = 5000): Promise<number> {
    const rows = await this.deps.db.query<RunRow>(
      `SELECT * FROM runs WHERE status = 'waiting' AND enqueued_at IS NULL AND created_at < now() - ($1::double precision * interval '1 millisecond')
       ORDER BY created_at LIMIT 500`,
      [olderThanMs],
    );
    await this.enqueue(rows);
    return rows.length;
  }

  /**
   * Queues a freshly signed job for each of these runs that is waiting (a requeued dead letter:
   * its old envelope may have expired). The caller removes any old job under the same id first.
   */
  async enqueueFresh(ids: readonly string[]): Promise<void> {
    const rows = await this.deps.db.query<RunRow>("SELECT * FROM runs WHERE id = ANY($1) AND status = 'waiting'", [ids]);
    await this.enqueue(rows);
  }

  async get(id: string): Promise<RunView> {
    if (!RunId.safeParse(id).success) throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'run ids are UUIDs');
    const rows = await this.deps.db.query<RunRow>('SELECT * FROM runs WHERE id = $1', [id]);
    if (!rows[0]) throw new OrderlyError('ORDERLY_E_NOT_FOUND', `no run ${id}`);
    return this.view(rows[0], true);
  }

  /** Runs newest first, never with results; `segments` (when given) narrows to the caller's bindings. */
  async list(filter: { status?: RunStatus | undefined; limit: number; segments?: readonly string[] | undefined }): Promise<RunView[]> {
    const rows = await this.deps.db.query<RunRow>(
      'SELECT * FROM runs WHERE ($1::text IS NULL OR status = $1) AND ($2::text[] IS NULL OR segment = ANY($2)) ORDER BY created_at DESC LIMIT $3',
      [filter.status ?? null, filter.segments ? [...filter.segments] : null, filter.limit],
    );
    return Promise.all(rows.map((r) => this.view(r, false)));
  }

  /** A run's PHI: its input and result, decrypted (the PHI read routes audit each call). */
  async readPhi(id: string): Promise<{ input: unknown; result: unknown }> {
    if (!RunId.safeParse(id).success) throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'run ids are UUIDs');
    const [row] = await this.deps.db.query<RunRow>('SELECT * FROM runs WHERE id = $1', [id]);
    if (!row) throw new OrderlyError('ORDERLY_E_NOT_FOUND', `no run ${id}`);
    const input = await this.deps.cipher.open(row.input_sealed, inputAad(row.id));
    const result = row.result_sealed ? await this.deps.cipher.open(row.result_sealed, resultAad(row.id)) : null;
    return { input, result };
  }

  async logs(id: string): Promise<LogLine[]> {
    await this.get(id);
    const rows = await this.deps.db.query<{ seq: number; attempt: number; at: Date; level: LogLine['level']; source: LogLine['source']; msg: string }>(
      'SELECT * FROM run_logs WHERE run_id = $1 ORDER BY attempt, seq', [id],
    );
    return rows.map((r) => ({ seq: r.seq, at: r.at.toISOString(), level: r.level, source: r.source, msg: r.msg }));
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
      const decision = decideClaim({ attempts: row.attempts, maxAttempts: row.max_attempts, latestUnfinished: row.latest_unfinished, leaseRemainingMs: row.lease_remaining_ms ?? 0 });
      switch (decision.kind) {
        case 'defer':
        case 'exhausted': {
          const error = new OrderlyError('ORDERLY_E_ATTEMPT_LOST', `attempt ${decision.lostAttempt} ended without a report (its runner died or stalled)`, { attempt: decision.lostAttempt }).toJSON();
          const moved = await this.finish(tx, id, { status: decision.kind === 'defer' ? 'waiting' : 'dead_lettered', attempt: decision.lostAttempt, error });
          if (moved?.status === 'dead_lettered') await this.deps.onDeadLettered?.(tx, id, error.code);
          return { decision, row };
        }
        case 'spent':
        case 'busy': // nothing changes: the live attempt goes on
          return { decision, row };
        case 'start': {
          // Opened before the attempt is recorded: an input that cannot be opened now (Vault
          // down, key version retired) starts no attempt, so it is not counted as a lost one.
          const input = (await this.deps.cipher.open(row.input_sealed, inputAad(row.id))) as Record<string, unknown>;
          await tx.query(`UPDATE runs SET status = 'active', attempts = $2, started_at = COALESCE(started_at, now()), updated_at = now() WHERE id = $1`, [id, decision.attempt]);
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
          activeAttempt: decision.activeAttempt, retryInMs: decision.retryInMs,
        });
      case 'defer':
        return { runId: row.id as RunId, lostAttempt: decision.lostAttempt, retryInMs: backoffDelayMs(decision.lostAttempt) };
      case 'exhausted':
        await this.deps.queues.queue(dlqQueueName(row.segment)).add('dead-letter', { runId: row.id, errorCode: 'ORDERLY_E_ATTEMPT_LOST', attempts: decision.lostAttempt }, { jobId: row.id });
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
    return { runId: row.id as RunId, attempt: decision.attempt, final: decision.final, idempotencyKey: row.idempotency_key as IdempotencyKey, input, fence: decided.fence!, leaseMs, ...(credentials ? { credentials } : {}) };
  }

  /**
   * An attempt recorded at claim whose start then failed (Vault sealed or down while issuing its
   * SecretID) ends failed with that error, like any system failure, rather than being left to
   * count as lost: retried after the backoff, or dead-lettered when it was the last.
   */
  private async failStartedAttempt(row: RunRow, decision: { attempt: number; final: boolean }, err: unknown): Promise<void> {
    const error = isOrderlyError(err) ? err.toJSON() : new OrderlyError('ORDERLY_E_INTERNAL', 'the run could not be started').toJSON();
    const status: RunStatus = decision.final || !error.retryable ? 'dead_lettered' : 'waiting';
    const moved = await this.deps.db.transaction(async (tx) => {
      const finished = await this.finish(tx, row.id, { status, attempt: decision.attempt, error });
      if (finished?.status === 'dead_lettered') await this.deps.onDeadLettered?.(tx, row.id, error.code);
      return finished;
    });
    if (moved?.status === 'dead_lettered') {
      await this.deps.queues.queue(dlqQueueName(row.segment)).add('dead-letter', { runId: row.id, errorCode: error.code, attempts: decision.attempt }, { jobId: row.id });
    }
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

  /**
   * Records an attempt's outcome, moving the run only along the transition table: a late or
   * repeated report cannot move a finished run, and the report of an attempt that a newer one
   * replaced (it was recorded lost, then reported after all) records that attempt's outcome but
   * does not move the run. Returns the new state, or undefined if the run was not in a state that
   * allows it.
   */
  async finish(tx: Queryable, id: string, outcome: { status: RunStatus; attempt: number; result?: unknown; error?: ErrorBody; flags?: readonly string[] }): Promise<{ status: RunStatus; segment: SegmentName } | undefined> {
    const terminal = outcome.status !== 'waiting';
    const sealedResult = outcome.result === undefined ? null : JSON.stringify(await this.deps.cipher.seal(outcome.result, resultAad(id)));
    // The runner revokes its token before it reports: the attempt's lease is over either way.
    await tx.query('UPDATE run_leases SET released_at = now() WHERE run_id = $1 AND attempt = $2 AND released_at IS NULL', [id, outcome.attempt]);
    if (outcome.status !== 'cancelled' && outcome.status !== 'discarded') {
      await tx.query('UPDATE run_attempts SET finished_at = COALESCE(finished_at, now()), outcome = $3, error = $4 WHERE run_id = $1 AND attempt = $2', [
        id, outcome.attempt, outcome.status === 'succeeded' ? 'succeeded' : 'failed', outcome.error ? JSON.stringify(outcome.error) : null,
      ]);
    }
    const rows = await tx.query<RunRow>(
      `UPDATE runs SET status = $2, result_sealed = $3, error = $4, attempts = GREATEST(attempts, $5), updated_at = now(),
         finished_at = CASE WHEN $6 THEN now() ELSE NULL END,
         flags = ARRAY(SELECT DISTINCT f FROM unnest(flags || $8::text[]) AS f ORDER BY f)
       WHERE id = $1 AND status = ANY($7) AND attempts <= $5 RETURNING status, segment`,
      [
        id,
        outcome.status,
        sealedResult,
        outcome.error ? JSON.stringify(outcome.error) : null,
        outcome.attempt,
        terminal,
        fromStates(outcome.status),
        [...(outcome.flags ?? [])],
      ],
    );
    return rows[0] ? { status: rows[0].status, segment: rows[0].segment as SegmentName } : undefined;
  }
}
