import { randomUUID } from 'node:crypto';
import {
  assertMaskable,
  BotName,
  canonicalJson,
  declaredPhiFromInput,
  CreateRunRequest,
  IdempotencyKey,
  JobPayload,
  OrderlyError,
  PackageDigest,
  RunId,
  RunView,
  SegmentName,
  Signer,
  signJobWith,
  validateInput,
} from '@orderly/shared';
import type { Logger } from '@orderly/shared';
import { Db, Queryable } from '../db/db';
import { Packages, StoredPackage } from '../packages/packages';
import { AtRestBox, AtRestCipher } from '../keys/at-rest';
import { RunQueues, RunJobToAdd, settleWithin } from './queues';
import { inputAad, RunRepository, RunRow } from './repository';

export const DEFAULT_IDEMPOTENCY_WINDOW_HOURS = 7 * 24;
/** How long creating runs waits for their jobs to reach Redis before it answers anyway (they are stored). */
export const ENQUEUE_TIMEOUT_MS = 2000;

/** Refuses runs of packages a runner of the segment would refuse (revoked key, no release for prod). */
export interface ReleaseGate {
  gate(pkg: StoredPackage, segment: SegmentName): Promise<void>;
  /** The version a run without one takes in a segment: the newest released for its channel. */
  defaultFor(name: BotName, segment: SegmentName): Promise<StoredPackage>;
}

export interface RunCreationDeps {
  db: Db;
  packages: Packages;
  queues: RunQueues;
  cipher: AtRestCipher;
  signer: Signer;
  repository: RunRepository;
  segments: readonly SegmentName[];
  jobTtlSeconds: number;
  /** How long after a run ended its idempotency key still returns it (default 7 days). */
  idempotencyWindowHours?: number | undefined;
  releaseGate: ReleaseGate;
  /** Bound on queueing new runs' jobs before answering (default `ENQUEUE_TIMEOUT_MS`). */
  enqueueTimeoutMs?: number | undefined;
  log?: Logger | undefined;
}

export interface CreateOptions {
  /** Runs in the transaction that inserts the runs, after them (a batch record): throwing rolls them back. */
  inTransaction?: (tx: Queryable, runs: readonly { runId: string; created: boolean }[]) => Promise<void>;
}

/** A request's refusal names which of several requests it was (`item`, 0-based). */
function atItem<T>(count: number, index: number, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (count === 1 || !(err instanceof OrderlyError)) throw err;
    throw new OrderlyError(err.code, `item ${index + 1}: ${err.message}`, { ...err.details, item: index });
  }
}

/** Creation of runs: idempotency keys, sealed inputs, signed jobs on the segment queues. */
export class RunCreation {
  constructor(private readonly deps: RunCreationDeps) {}

  /**
   * Creates runs. Every request is validated before anything is stored; then all new runs are
   * inserted in one transaction. A key seen before returns its first run, unless it was used
   * for another bot, segment or input (409). Jobs are queued after commit; a run whose job could
   * not be queued stays `waiting` with no `enqueued_at` and is queued by `enqueuePending`.
   */
  async create(requests: readonly CreateRunRequest[], options: CreateOptions = {}): Promise<{ run: RunView; created: boolean }[]> {
    const resolved = new Map<string, Promise<StoredPackage>>();
    const gated = new Map<string, Promise<void>>();
    const prepared: {
      id: string;
      key: IdempotencyKey;
      mac: string;
      pkg: StoredPackage;
      segment: SegmentName;
      input: Record<string, unknown>;
      sealed: AtRestBox;
    }[] = [];
    for (const [index, request] of requests.entries()) {
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
      if (!gated.has(gateKey)) gated.set(gateKey, this.deps.releaseGate.gate(pkg, segment));
      await gated.get(gateKey);
      const input = atItem(requests.length, index, () => {
        const valid = validateInput(pkg.manifest.input, request.input);
        // A declared PHI value too short to mask could not be kept out of logs: refused up front.
        assertMaskable({ phi: declaredPhiFromInput(pkg.manifest.phi, valid) });
        return valid;
      });
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
      const retired = existing.length
        ? await this.retireExpiredKeys(
            tx,
            existing.map((r) => r.idempotency_key),
          )
        : [];
      if (retired.length) {
        const again = await insertNew(
          tx,
          prepared.filter((p) => retired.some((r) => r.key === p.key)),
        );
        inserted = [...inserted, ...again.inserted];
        existing = [...existing.filter((r) => !retired.some((x) => x.key === r.idempotency_key)), ...again.existing];
        retiredKeys.push(...retired);
      }
      const createdIds = new Set(inserted.map((r) => r.id));
      const byKey = new Map([...inserted, ...existing].map((r) => [r.idempotency_key, r]));
      const outcome = prepared.map((p) => {
        const row = byKey.get(p.key)!;
        if (row.request_mac !== p.mac) {
          throw new OrderlyError('ORDERLY_E_IDEMPOTENCY_KEY_REUSED', `idempotency key ${p.key} belongs to a run with another bot, segment or input`, {
            runId: row.id,
          });
        }
        return { row, created: createdIds.has(row.id) && row.id === p.id };
      });
      await options.inTransaction?.(
        tx,
        outcome.map((o) => ({ runId: o.row.id, created: o.created })),
      );
      return outcome;
    };
    const retiredKeys: { key: string; segment: string }[] = [];
    const inserting = prepared.length === 1 && !options.inTransaction ? insert(this.deps.db) : this.deps.db.transaction(insert);
    inserting.catch(() => undefined); // awaited below; not an unhandled rejection while signing

    // Signing (Ed25519, one envelope per job) is the largest CPU cost of a batch: do it while the
    // database inserts, yielding now and then so its round trips go on. The values are the ones
    // being inserted; jobs of runs that turn out to exist already are never sent.
    const signed = new Map<string, RunJobToAdd>();
    const now = Date.now();
    for (const [i, p] of prepared.entries()) {
      if (i > 0 && i % 100 === 0) await new Promise((resolve) => setImmediate(resolve));
      const { name, version, digest, publisherKeyId } = p.pkg.view;
      signed.set(
        p.id,
        await this.signedJob({ id: p.id, key: p.key, segment: p.segment, name, version, digest, publisherKeyId, attempts: p.pkg.manifest.attempts }, now),
      );
    }
    const outcome = await inserting;

    // The retired runs' jobs (completed or failed, kept by BullMQ for a while) would make BullMQ
    // ignore the new jobs under the same ids.
    const fresh = outcome.filter((o) => o.created).map((o) => o.row);
    const queueing = (async () => {
      for (const { key, segment } of retiredKeys) await this.deps.queues.removeFinished(segment as SegmentName, this.deps.queues.jobIdOf(key));
      await this.enqueue(fresh, signed);
    })();
    // The runs are stored: that is what the answer promises. Redis down (its client holds commands
    // until it is back) must not hold the answer: past the bound the runs stay `waiting` without
    // `enqueued_at`, and whichever comes first queues them, this add once Redis is back or the
    // pending sweep (the job id is the key's, so the second add is a no-op).
    const queued = await settleWithin(queueing, this.deps.enqueueTimeoutMs ?? ENQUEUE_TIMEOUT_MS);
    if (queued !== 'done' && fresh.length > 0)
      this.deps.log?.warn({ runs: fresh.length, outcome: queued }, 'runs stored, not queued yet; the pending sweep will queue them');
    return Promise.all(outcome.map(async (o) => ({ run: await this.deps.repository.view(o.row, false), created: o.created })));
  }

  /**
   * The package a request runs: the named version, or else the newest version released for the
   * channel of the request's segment (without a segment: the first segment the bot's newest
   * upload names, which only picks the segment, never the version).
   */
  async resolvePackage(request: Pick<CreateRunRequest, 'bot' | 'version' | 'segment'>): Promise<StoredPackage> {
    if (request.version !== undefined) return this.deps.packages.resolve(request.bot, request.version);
    const segment = request.segment ?? (await this.deps.packages.resolve(request.bot)).manifest.segments[0]!;
    if (!this.deps.segments.includes(segment))
      throw new OrderlyError('ORDERLY_E_SEGMENT_UNKNOWN', `segment ${segment} is not served by this control room`, { segment });
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
  private async enqueue(rows: readonly RunRow[], presigned: ReadonlyMap<string, RunJobToAdd> = new Map(), delayMs?: number): Promise<void> {
    if (rows.length === 0) return;
    const unsigned = rows.filter((r) => !presigned.has(r.id));
    const publisherKeys = unsigned.length ? await this.deps.repository.publisherKeyIds(unsigned.map((r) => r.digest)) : new Map<string, string>();
    const now = Date.now();
    const jobs: RunJobToAdd[] = await Promise.all(
      rows.map(
        (row) =>
          presigned.get(row.id) ??
          this.signedJob(
            {
              id: row.id,
              key: row.idempotency_key,
              segment: row.segment,
              name: row.bot_name,
              version: row.bot_version,
              digest: row.digest,
              publisherKeyId: publisherKeys.get(row.digest),
              attempts: row.max_attempts,
            },
            now,
          ),
      ),
    );
    await this.deps.queues.add(delayMs ? jobs.map((job) => ({ ...job, delayMs })) : jobs);
    await this.deps.db.query('UPDATE runs SET enqueued_at = now() WHERE id = ANY($1)', [rows.map((r) => r.id)]);
  }

  /** Queues waiting runs whose job never reached Redis (Redis was down at creation). */
  async enqueuePending(olderThanMs = 5000): Promise<number> {
    const pending = await this.deps.repository.pendingEnqueue(olderThanMs);
    // A waiting run without `enqueued_at` needs a job: a finished one under its id (the job of an
    // attempt recorded lost by the lost-attempt sweep) would make the add a no-op. One that a
    // runner holds is left for now: it may yet claim the run; the next sweep looks again.
    const rows: RunRow[] = [];
    for (const row of pending) {
      if ((await this.deps.queues.removeFinished(row.segment as SegmentName, this.deps.queues.jobIdOf(row.idempotency_key))) !== 'held') rows.push(row);
    }
    await this.enqueue(rows);
    return rows.length;
  }

  /**
   * Queues a freshly signed job for each of these runs that is waiting (a requeued dead letter:
   * its old envelope may have expired, or a lost attempt's retry, after `delayMs`). The caller
   * removes any old job under the same id first.
   */
  async enqueueFresh(ids: readonly string[], delayMs?: number): Promise<void> {
    const rows = await this.deps.repository.waiting(ids);
    await this.enqueue(rows, new Map(), delayMs);
  }
}
