import { KeyObject } from 'node:crypto';
import { Job, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  createRedactor, declaredPhiFromInput, ErrorBody, hasCode, isOrderlyError, JobPayload, OrderlyError, runQueueName, SegmentName, validateInput, verifyJob,
} from '@orderly/shared';
import type { Logger } from '@orderly/shared';
import type { VaultClientFactory } from '@orderly/shared/vault';
import { BotHost } from '../bot-host/host';
import { CredentialLease, leaseCredentials } from '../credentials/lease';
import { ControlRoomClient } from '../control-room-client';
import { PackageCache } from '../packages/cache';
import { ReportPublisher } from '../reports/publisher';
import { RunCancellations } from './cancellations';
import { RunLog } from './run-log';

export interface SegmentWorkerDeps {
  segment: SegmentName;
  runnerId: string;
  connection: Redis;
  prefix: string;
  controlRoomSigningKey: KeyObject;
  client: ControlRoomClient;
  cache: PackageCache;
  /** One host per concurrent run. */
  hosts: BotHost[];
  reports: ReportPublisher;
  /** Vault, for bots that declare credentials; undefined: such runs fail with a clear code. */
  vault?: VaultClientFactory | undefined;
  log: Logger;
  /** Called when bot code starts, with the time the browser context took (for dispatch latency). */
  onBotStarted?: (runId: string, contextMs: number) => void;
  /** Runs the control room cancelled: their bots are aborted and their jobs fail without retry. */
  cancellations?: RunCancellations;
}

function toErrorBody(err: unknown): ErrorBody {
  if (isOrderlyError(err)) return (err as OrderlyError).toJSON();
  return { code: 'ORDERLY_E_INTERNAL', message: 'the runner failed unexpectedly', retryable: true, details: {} };
}

/**
 * The runner's pipeline for one segment: verify the signed job, fetch and verify the package,
 * claim the run, execute it in a bot host, report. Builders like this connect nothing themselves.
 */
export function createSegmentWorker(deps: SegmentWorkerDeps): { worker: Worker; close(graceMs?: number): Promise<void> } {
  const idle = [...deps.hosts];
  const activeRuns = new Map<string, BotHost>();

  async function refuse(job: Job, err: unknown): Promise<never> {
    const code = isOrderlyError(err) ? err.code : 'ORDERLY_E_JOB_FORGED';
    // Only a verified signature makes the run id trustworthy; it is in details then.
    const runId = isOrderlyError(err) && typeof err.details.runId === 'string' ? err.details.runId : undefined;
    deps.log.warn({ jobId: job.id, code }, 'job refused; the bot was not run');
    await deps.reports.refused(job.id ?? '(none)', runId, code, err instanceof Error ? err.message : 'refused');
    throw new UnrecoverableError(code);
  }

  async function execute(payload: JobPayload, attempt: number, runLog: RunLog, log: Logger): Promise<unknown> {
    const bot = await deps.cache.get(payload);
    const claim = await deps.client.claim(payload.runId, attempt, deps.runnerId);
    // Defence in depth: the control room validated the input; so does the side that runs it.
    const input = validateInput(bot.manifest.input, claim.input);
    await deps.reports.started(payload.runId, attempt);
    const timeoutMs = bot.manifest.timeoutSeconds * 1000;
    let lease: CredentialLease | undefined;
    const host = idle.pop();
    if (!host) throw new OrderlyError('ORDERLY_E_INTERNAL', 'no idle bot host');
    activeRuns.set(payload.runId, host);
    const detachCancel = deps.cancellations?.attach(payload.runId, () => host.abort(payload.runId));
    try {
      if (claim.credentials) {
        if (!deps.vault) throw new OrderlyError('ORDERLY_E_VAULT_NOT_CONFIGURED', 'this bot declares credentials but the runner has no VAULT_ADDR');
        lease = await leaseCredentials({ factory: deps.vault, grant: claim.credentials, bot: bot.manifest.name, names: bot.manifest.credentials, deadline: Date.now() + Math.min(timeoutMs, 60_000), log });
        // The control room must be able to revoke this token: no record, no run.
        await deps.client.recordLease(payload.runId, attempt, lease.accessor);
      }
      // From here on every line and error is masked for this run's own values (invariant 4).
      const phi = declaredPhiFromInput(bot.manifest.phi, input);
      runLog.useRedactor(createRedactor({ secrets: Object.values(lease?.secrets ?? {}), phi }));
      if (deps.cancellations?.wasCancelled(payload.runId)) throw new OrderlyError('ORDERLY_E_RUN_CANCELLED', 'the run was cancelled before its bot started');
      const uploads: Promise<void>[] = [];
      const outcome = await host.run(
        {
          runId: payload.runId,
          attempt,
          idempotencyKey: payload.idempotencyKey,
          botName: bot.manifest.name,
          code: bot.code,
          input,
          secrets: lease?.secrets ?? {},
          hosts: bot.manifest.hosts,
          timeoutMs,
          phi,
          phiSelectors: bot.manifest.phiSelectors,
          screenshotAllowFields: bot.manifest.screenshotAllowFields,
        },
        {
          onLine: (line) => runLog.add(line),
          onStarted: (contextMs) => deps.onBotStarted?.(payload.runId, contextMs),
          // Masked in the host already; stored encrypted by the control room. A lost screenshot
          // is logged, it does not fail the run.
          onScreenshot: (shot) => {
            if (shot.failedClosed !== 'none') runLog.runner('warn', `screenshot ${shot.name} masked whole ${shot.failedClosed}: masking could not be done element by element`);
            uploads.push(deps.client.uploadScreenshot(payload.runId, attempt, shot.name, shot.png).catch((err: unknown) => runLog.runner('warn', `screenshot ${shot.name} not stored: ${isOrderlyError(err) ? err.code : 'error'}`)));
          },
        },
      );
      await Promise.all(uploads);
      if (!outcome.ok) throw new OrderlyError(outcome.error.code, outcome.error.message, {}, { retryable: outcome.error.retryable });
      return outcome.result;
    } finally {
      // Whatever happened: the run's token is revoked before the attempt is reported.
      await lease?.release();
      detachCancel?.();
      activeRuns.delete(payload.runId);
      idle.push(host);
    }
  }

  const worker = new Worker(
    runQueueName(deps.segment),
    async (job: Job) => {
      let payload: JobPayload;
      try {
        payload = verifyJob(job.data, deps.controlRoomSigningKey, deps.segment);
      } catch (err) {
        return refuse(job, err);
      }
      const attempt = job.attemptsMade + 1;
      const final = (retryable: boolean) => !retryable || attempt >= (job.opts.attempts ?? 1);
      const log = deps.log.child({ runId: payload.runId, bot: payload.bot.name, attempt });
      const started = Date.now();
      const runLog = new RunLog((batch) => deps.reports.logs(payload.runId, attempt, batch));
      try {
        const result = await execute(payload, attempt, runLog, log);
        await deps.reports.finished(payload.runId, attempt, { ok: true, result }, true, Date.now() - started, runLog.rest());
        log.info({ ms: Date.now() - started }, 'run succeeded');
        return { ok: true };
      } catch (err) {
        if (hasCode(err, 'ORDERLY_E_RUN_NOT_CLAIMABLE')) {
          log.info('run no longer claimable (cancelled or finished); not run');
          return { ok: false };
        }
        // A cancelled run's attempt ends with its own non-retryable code: the job fails, no retry.
        const error = deps.cancellations?.wasCancelled(payload.runId)
          ? new OrderlyError('ORDERLY_E_RUN_CANCELLED', 'the run was cancelled; its bot was aborted').toJSON()
          : runLog.redactError(toErrorBody(err));
        const isFinal = final(error.retryable);
        runLog.runner('error', `attempt ${attempt} failed: ${error.code}`);
        await deps.reports.finished(payload.runId, attempt, { ok: false, error }, isFinal, Date.now() - started, runLog.rest());
        log.warn({ code: error.code, final: isFinal }, 'run attempt failed');
        // Only the code goes to BullMQ, which stores failure reasons and stacks in Redis: the
        // cause's message may hold PHI, so it is deliberately not attached.
        if (!error.retryable) throw new UnrecoverableError(error.code);
        throw new Error(error.code); // eslint-disable-line preserve-caught-error
      }
    },
    { connection: deps.connection, prefix: deps.prefix, concurrency: deps.hosts.length, autorun: true },
  );
  worker.on('error', (err) => deps.log.error({ err: { message: err.message } }, 'worker error'));

  let closing: Promise<void> | undefined;
  return {
    worker,
    /**
     * Graceful shutdown: stop taking jobs, let the active run finish within `graceMs`; past that,
     * abort it. An aborted job is retried (its lock lapses), never lost.
     */
    close(graceMs = 30_000) {
      closing ??= (async () => {
        const timer = setTimeout(() => {
          for (const [runId, host] of activeRuns) host.abort(runId);
        }, graceMs);
        try {
          await worker.close();
        } finally {
          clearTimeout(timer);
        }
      })();
      return closing;
    },
  };
}
