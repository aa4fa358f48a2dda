import { KeyObject } from 'node:crypto';
import { Job, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  ERROR_CODES,
  ErrorBody,
  ErrorCode,
  isOrderlyError,
  LogLine,
  LEGACY_REPORTS_QUEUE,
  openSealed,
  Report,
  ReportBody,
  reportAad,
  reportSignedBy,
  RunId,
  reportsQueueName,
  RunStatus,
  SegmentName,
} from '@orderly/shared';
import type { Logger } from '@orderly/shared';
import type { RunnerEvents } from '../audit/runner-events';
import { Db, Queryable } from '../db/db';
import type { DeadLettering } from '../dlq/dead-letter';
import { RunQueues } from '../runs/queues';
import { RunnerKey, RunnerKeys } from './runner-keys';
import type { KeyedHasher } from '../audit/keyed-hash';
import { Runs } from '../runs/runs';
import { fenceHolds, refuseUnfencedReport } from '../runs/fencing';

export interface ReportConsumerDeps {
  db: Db;
  runs: Runs;
  queues: RunQueues;
  sealingKey: KeyObject;
  connection: Redis;
  prefix: string;
  /** The segments this control room serves: it consumes each one's reports queue. */
  segments: readonly SegmentName[];
  log: Logger;
  /** Audit events of results, refusals and unwrap failures. */
  runnerEvents?: RunnerEvents;
  /** The runner public keys reports must be signed with. */
  runnerKeys: RunnerKeys;
  /** Keyed hash of job ids (idempotency keys, or whatever was written as one) before they are stored or logged. */
  hashJobId: KeyedHasher;
  /** The one way a run becomes dead-lettered (state, alert and DLQ entry). */
  deadLettering: DeadLettering;
}

async function insertLines(tx: Queryable, runId: string, attempt: number, lines: readonly LogLine[]): Promise<void> {
  if (lines.length === 0) return;
  const values: unknown[] = [];
  const tuples = lines.map((line, i) => {
    values.push(runId, attempt, line.seq, line.at, line.level, line.source, line.msg);
    const b = i * 7;
    return `($${b + 1}, $${b + 2}, $${b + 3}, $${b + 4}, $${b + 5}, $${b + 6}, $${b + 7})`;
  });
  // Reports are delivered at least once: a line seen before is skipped, not duplicated.
  await tx.query(`INSERT INTO run_logs (run_id, attempt, seq, at, level, source, msg) VALUES ${tuples.join(', ')} ON CONFLICT DO NOTHING`, values);
}

/** The status a failed attempt leaves the run in. */
function failedStatus(final: boolean, error: ErrorBody | undefined): 'waiting' | 'failed' | 'dead_lettered' {
  if (!final) return 'waiting';
  return error?.code === 'ORDERLY_E_BOT_BUSINESS' ? 'failed' : 'dead_lettered';
}

/** Records a report that did not come from a runner of the run's segment, and drops it. */
async function refuseReport(deps: ReportConsumerDeps, report: { kind: string; runId: string | undefined; runnerId: string }, problem: string): Promise<never> {
  const runId = report.runId && RunId.safeParse(report.runId).success ? report.runId : undefined;
  const runnerId = report.runnerId.slice(0, 200);
  // The run may not exist (a made-up id): the refusal is kept all the same, without the link.
  const known = runId ? (await deps.db.query<{ id: string }>('SELECT id FROM runs WHERE id = $1', [runId]))[0] : undefined;
  await deps.db.query('INSERT INTO job_refusals (job_id, run_id, runner_id, error_code, reason) VALUES ($1, $2, $3, $4, $5)', [
    `report:${report.kind.slice(0, 20)}`,
    known ? runId : null,
    runnerId,
    'ORDERLY_E_REPORT_FORGED',
    problem,
  ]);
  deps.log.warn(
    { kind: report.kind, runId, runnerId, code: 'ORDERLY_E_REPORT_FORGED', problem },
    "report refused: it did not come from a runner of the run's segment",
  );
  await deps.runnerEvents?.jobRefused({ jobId: `report:${report.kind}`, runId: known ? runId : undefined, runnerId, errorCode: 'ORDERLY_E_REPORT_FORGED' });
  throw new UnrecoverableError('ORDERLY_E_REPORT_FORGED');
}

/** The routing fields of something on the reports queue that is not a valid signed report. */
function claimedFields(raw: unknown): { kind: string; runId: string | undefined; runnerId: string } {
  const o = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  const text = (v: unknown) => (typeof v === 'string' ? v : undefined);
  return { kind: text(o.kind)?.replace(/[^a-z]/g, '') || 'unknown', runId: text(o.runId), runnerId: text(o.runnerId) ?? 'unknown' };
}

const segmentOf = async (deps: ReportConsumerDeps, runId: string): Promise<string | undefined> =>
  (await deps.db.query<{ segment: string }>('SELECT segment FROM runs WHERE id = $1', [runId]))[0]?.segment;

/**
 * A report counts only if a runner the control room knows signed it with its own Ed25519 key, and
 * logs and outcomes only for a run of that runner's segment. Anything else (written into Redis by
 * someone else, signed by a revoked or unknown key, or by a runner of another segment) is
 * recorded as a refusal and dropped: it never moves a run. Returns the signer.
 */
async function checkSender(deps: ReportConsumerDeps, report: Report, queueSegment: SegmentName | undefined): Promise<RunnerKey> {
  const signer = await deps.runnerKeys.get(report.sig.key);
  const runId = 'runId' in report ? report.runId : undefined;
  if (!signer) return refuseReport(deps, { ...report, runId }, 'signed with an unknown or revoked runner key');
  if (!reportSignedBy(report, signer.publicKey)) return refuseReport(deps, { ...report, runId }, 'signature does not verify');
  // A segment's queue carries only its own runners' reports (its Redis user is the only runner
  // user that may push there); one signed by another segment's runner was copied there.
  if (queueSegment !== undefined && queueSegment !== signer.segment)
    return refuseReport(
      deps,
      { ...report, runId },
      `signed by a runner of segment ${signer.segment} but found on the reports queue of segment ${queueSegment}`,
    );
  // A refusal names the run of a job found on the runner's own queue, which may be another
  // segment's run (a replayed envelope): that is what it reports, and it is handled below. Logs
  // and outcomes are only ever a runner's own segment's.
  if (runId && report.kind !== 'refused') {
    const segment = await segmentOf(deps, runId);
    if (segment !== undefined && segment !== signer.segment)
      return refuseReport(deps, { ...report, runId }, `sent by a runner of segment ${signer.segment} for a run of another segment`);
  }
  return signer;
}

/**
 * A runner would not run a job. Only a runner of the run's own segment can end the run that way:
 * a genuine envelope copied into another segment's queue is refused there, and that refusal is a
 * security event (someone moved a job across segments), never a reason to dead-letter the run,
 * which is still waiting for its own segment's runner.
 */
async function applyRefusal(deps: ReportConsumerDeps, report: Extract<Report, { kind: 'refused' }>, signer: RunnerKey): Promise<void> {
  const jobId = deps.hashJobId(report.jobId);
  const runSegment = report.runId ? await segmentOf(deps, report.runId) : undefined;
  const foreign = runSegment !== undefined && runSegment !== signer.segment;
  const reason = foreign
    ? `security: refused by a runner of segment ${signer.segment} for a run of another segment; the run was left untouched (${report.reason})`.slice(0, 1000)
    : report.reason;
  await deps.db.query('INSERT INTO job_refusals (job_id, run_id, runner_id, error_code, reason) VALUES ($1, $2, $3, $4, $5)', [
    jobId,
    runSegment !== undefined ? report.runId : null,
    report.runnerId,
    report.errorCode.slice(0, 100),
    reason,
  ]);
  deps.log.warn({ jobId, runId: report.runId, runnerId: report.runnerId, code: report.errorCode, foreign }, 'runner refused a job');
  await deps.runnerEvents?.jobRefused({ jobId: report.jobId, runId: report.runId, runnerId: report.runnerId, errorCode: report.errorCode });
  if (foreign) {
    await deps.runnerEvents?.foreignRefusal({ runId: report.runId!, runner: signer.runner, runnerSegment: signer.segment, errorCode: report.errorCode });
    return;
  }
  // A run id comes only with a verified control-room signature (expired): that run will never
  // execute from this job, so it must not sit in `waiting` forever.
  if (report.runId && runSegment !== undefined) {
    const error = {
      code: Object.hasOwn(ERROR_CODES, report.errorCode) ? (report.errorCode as ErrorCode) : 'ORDERLY_E_JOB_FORGED',
      message: report.reason,
      retryable: false,
      details: {},
    } satisfies ErrorBody;
    await deps.deadLettering.deadLetter(report.runId, { attempt: 1, error });
  }
}

/**
 * Applies one report from a runner. Exported for tests; the workers below call it. `queueSegment`:
 * the segment whose reports queue it was found on (undefined for the legacy shared queue).
 */
export async function applyReport(deps: ReportConsumerDeps, raw: unknown, queueSegment?: SegmentName): Promise<void> {
  const parsed = Report.safeParse(raw);
  // Unsigned and malformed reports are recorded too: whoever wrote them into Redis is of interest.
  if (!parsed.success) return refuseReport(deps, claimedFields(raw), 'unsigned or malformed report');
  const report = parsed.data;
  const signer = await checkSender(deps, report, queueSegment);
  switch (report.kind) {
    case 'started':
      // Sent by runners before attempts were recorded at claim; the claim says as much now.
      return;
    case 'refused':
      return applyRefusal(deps, report, signer);
    case 'logs':
    case 'finished': {
      const body = ReportBody.parse(JSON.parse(openSealed(deps.sealingKey, report.sealed, reportAad(report.runId, report.attempt)).toString('utf8')));
      if (report.kind === 'logs') {
        await insertLines(deps.db, report.runId, report.attempt, body.lines);
        return;
      }
      // Fencing (issue 12): only the attempt's own claim may report its outcome.
      if (!(await fenceHolds(deps.db, report.runId, report.attempt, report.fence))) return refuseUnfencedReport(deps, report);
      if (report.redactionDrops || report.sandboxDenials)
        await deps.db.query('UPDATE run_attempts SET redaction_drops = $3, sandbox_denials = $4 WHERE run_id = $1 AND attempt = $2', [
          report.runId,
          report.attempt,
          report.redactionDrops ?? 0,
          report.sandboxDenials ?? 0,
        ]);
      const status = report.outcome === 'succeeded' ? ('succeeded' as const) : failedStatus(report.final, body.error);
      const outcome = { attempt: report.attempt, ...(body.error ? { error: body.error } : {}), flags: body.flags };
      const lines = (tx: Queryable) => insertLines(tx, report.runId, report.attempt, body.lines);
      let moved: { status: RunStatus } | undefined;
      if (status === 'dead_lettered') {
        moved = (await deps.deadLettering.deadLetter(report.runId, outcome, lines)) ? { status } : undefined;
      } else {
        moved = await deps.db.transaction(async (tx) => {
          await lines(tx);
          if (status === 'waiting') return deps.runs.retryLater(tx, report.runId, outcome);
          return deps.runs.finish(tx, report.runId, status, { ...outcome, ...(report.outcome === 'succeeded' ? { result: body.result ?? null } : {}) });
        });
      }
      deps.log.info(
        { runId: report.runId, attempt: report.attempt, status, applied: moved !== undefined, sandboxDenials: report.sandboxDenials },
        'run outcome recorded',
      );
      await deps.runnerEvents?.resultRecorded({
        runId: report.runId,
        attempt: report.attempt,
        runnerId: report.runnerId,
        outcome: report.outcome,
        status,
        final: report.final,
        applied: moved !== undefined,
        errorCode: body.error?.code,
        sandboxDenials: report.sandboxDenials,
      });
      return;
    }
  }
}

export interface ReportConsumer {
  /** One worker per served segment's queue, then the legacy shared queue's. */
  readonly workers: readonly Worker[];
  close(): Promise<void>;
}

/**
 * Consumes `orderly.reports.<segment>` for every segment served, and the legacy shared
 * `orderly.reports` of earlier releases, so that reports left there at upgrade are applied once
 * (with the same checks: a report's run must be of its signer's segment). No runner's Redis user
 * may reach the legacy queue, so nothing new arrives there. A report that fails for a transient
 * reason is retried by BullMQ.
 */
export function createReportConsumer(deps: ReportConsumerDeps): ReportConsumer {
  const queues: { name: string; segment: SegmentName | undefined }[] = [
    ...[...new Set(deps.segments)].map((segment) => ({ name: reportsQueueName(segment), segment })),
    { name: LEGACY_REPORTS_QUEUE, segment: undefined },
  ];
  const workers = queues.map(({ name, segment }) => {
    const worker = new Worker(
      name,
      async (job: Job) => {
        try {
          await applyReport(deps, job.data, segment);
        } catch (err) {
          if (isOrderlyError(err) && !err.retryable) throw new UnrecoverableError(err.code);
          throw err;
        }
      },
      { connection: deps.connection, prefix: deps.prefix, concurrency: 8, removeOnComplete: { count: 1000 }, removeOnFail: { age: 7 * 24 * 3600 } },
    );
    worker.on('error', (err) => deps.log.error({ queue: name, err: { message: err.message } }, 'report consumer error'));
    return worker;
  });
  return {
    workers,
    close: async () => {
      await Promise.all(workers.map((w) => w.close()));
    },
  };
}
