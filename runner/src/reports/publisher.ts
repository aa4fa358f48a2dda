import { createHash, KeyObject } from 'node:crypto';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { ErrorBody, LogLine, reportAad, reportsQueueName, SandboxDenials, sealTo, SegmentName, signReport, UnsignedReport } from '@orderly/shared';

/**
 * Sends reports to the control room on its own segment's `orderly.reports.<segment>` (the only
 * reports queue its Redis user may reach). Bodies (results, errors, log lines) are
 * sealed to the control room's X25519 key: Redis carries them but cannot read them.
 */
export class ReportPublisher {
  private readonly queue: Queue;
  private counter = 0;

  /** `signingKey` is the runner's own Ed25519 private key; the control room holds its public key. */
  constructor(
    connection: Redis,
    prefix: string,
    private readonly sealingKey: KeyObject,
    private readonly runnerId: string,
    private readonly signingKey: KeyObject,
    segment: SegmentName,
  ) {
    this.queue = new Queue(reportsQueueName(segment), { connection, prefix });
    // While Redis is away, adds wait in ioredis's offline queue; the 'error' events say nothing more.
    this.queue.on('error', () => undefined);
  }

  private async send(unsigned: UnsignedReport, jobId: string): Promise<void> {
    const report = signReport(this.signingKey, unsigned);
    // Retried for a long while: the control room may be down, its reports wait in Redis.
    await this.queue.add(report.kind, report, {
      jobId,
      attempts: 50,
      backoff: { type: 'exponential', delay: 500 },
      removeOnComplete: true,
      removeOnFail: false,
    });
  }

  private sealed(runId: string, attempt: number, body: { result?: unknown; error?: ErrorBody; lines: LogLine[]; flags?: readonly string[] }) {
    return sealTo(this.sealingKey, Buffer.from(JSON.stringify(body)), reportAad(runId, attempt));
  }

  logs(runId: string, attempt: number, lines: LogLine[]): Promise<void> {
    const n = ++this.counter;
    return this.send(
      {
        v: 1,
        kind: 'logs',
        runnerId: this.runnerId,
        at: new Date().toISOString(),
        runId: runId as never,
        attempt,
        sealed: this.sealed(runId, attempt, { lines }),
      },
      `${runId}.${attempt}.logs.${n}`,
    );
  }

  /** `fence`: the attempt's fencing token from its claim; without it the control room moves nothing. */
  finished(
    runId: string,
    attempt: number,
    outcome: { ok: true; result: unknown; flags?: readonly string[] } | { ok: false; error: ErrorBody },
    final: boolean,
    durationMs: number,
    lines: LogLine[],
    fence?: string,
    sandboxDenials?: SandboxDenials,
  ): Promise<void> {
    const body = outcome.ok ? { result: outcome.result, lines, ...(outcome.flags?.length ? { flags: outcome.flags } : {}) } : { error: outcome.error, lines };
    return this.send(
      {
        v: 1,
        kind: 'finished',
        runnerId: this.runnerId,
        at: new Date().toISOString(),
        runId: runId as never,
        attempt,
        outcome: outcome.ok ? 'succeeded' : 'failed',
        final: outcome.ok || final,
        ...(outcome.ok ? {} : { errorCode: outcome.error.code }),
        durationMs,
        ...(fence ? { fence } : {}),
        ...(sandboxDenials ? { sandboxDenials } : {}),
        sealed: this.sealed(runId, attempt, body),
      },
      `${runId}.${attempt}.finished`,
    );
  }

  /** A job this runner would not run. `jobId` came from the queue and is untrusted: hashed for the report's own id. */
  refused(jobId: string, runId: string | undefined, errorCode: string, reason: string): Promise<void> {
    const id = createHash('sha256').update(jobId).digest('hex').slice(0, 32);
    return this.send(
      {
        v: 1,
        kind: 'refused',
        runnerId: this.runnerId,
        at: new Date().toISOString(),
        jobId: jobId.slice(0, 300),
        ...(runId ? { runId: runId as never } : {}),
        errorCode,
        reason: reason.slice(0, 1000),
      },
      `refused.${id}.${Date.now()}`,
    );
  }

  close(): Promise<void> {
    return this.queue.close();
  }
}
