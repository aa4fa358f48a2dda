import { KeyObject } from 'node:crypto';
import { DelayedError, Job, UnrecoverableError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  ClaimAnswer, ClaimResponse, createRedactor, declaredPhiFromInput, ErrorBody, hasCode, isOrderlyError, JobPayload, OrderlyError, runQueueName, SegmentName, validateInput, verifyJob,
} from '@orderly/shared';
import type { Logger } from '@orderly/shared';
import type { VaultClientFactory } from '@orderly/shared/vault';
import { BotHost } from '../bot-host/host';
import { CredentialLease, leaseCredentials } from '../credentials/lease';
import { ControlRoomClient } from '../control-room-client';
import { PackageCache, VerifiedBot } from '../packages/cache';
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
  /**
   * How long a job's lock lasts without renewal, and how often stalled jobs (whose runner died
   * and stopped renewing) are looked for: together, how soon a dead runner's run is picked up.
   */
  lockDurationMs?: number;
  stalledIntervalMs?: number;
  /** Runs the control room cancelled: their bots are aborted and their jobs fail without retry. */
  cancellations?: RunCancellations;
}

/**
 * A stalled job is never failed by BullMQ for stalling: the control room counts a lost attempt
 * against the run's attempts and dead-letters the run when they are used up (see the claim).
 */
const NEVER_FAIL_FOR_STALLING = 1_000_000;
/** Base wait before asking a control room that could not be reached again (with jitter). */
const CLAIM_RETRY_MS = 5000;

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

  async function execute(payload: JobPayload, bot: VerifiedBot, claim: ClaimResponse, runLog: RunLog, log: Logger): Promise<unknown> {
    const attempt = claim.attempt;
    // Defence in depth: the control room validated the input; so does the side that runs it.
    const input = validateInput(bot.manifest.input, claim.input);
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
          browser: bot.manifest.browser,
          phi,
          phiSelectors: bot.manifest.phiSelectors,
          screenshotAllowFields: bot.manifest.screenshotAllowFields,
        },
        {
          onLine: (line) => runLog.add(line),
          onStarted: (contextMs) => deps.onBotStarted?.(payload.runId, contextMs),
          // Checkpoints are asked for and recorded under this attempt's number only.
          onStep: async (call) =>
            call.op === 'begin'
              ? deps.client.beginStep(payload.runId, attempt, call.name, call.rerun)
              : deps.client.completeStep(payload.runId, attempt, call.name, call.result).then(() => ({ state: 'recorded' as const })),
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

  /** The control room could not be reached: the job is asked again in a few seconds, with jitter. */
  const retryLater = (job: Job, token: string | undefined) => delay(job, token, Math.floor(CLAIM_RETRY_MS * (0.5 + Math.random() / 2)));

  /** Puts the job back in the queue for `ms`, without spending one of its BullMQ attempts. */
  async function delay(job: Job, token: string | undefined, ms: number): Promise<never> {
    await job.moveToDelayed(Date.now() + ms, token);
    throw new DelayedError();
  }

  /**
   * Claims the run for a new attempt. When the control room says the previous attempt was lost
   * (its runner died; BullMQ redelivered the stalled job at once), the job waits out the run's
   * backoff first, like any other retried failure. Undefined: the run is not to be run (finished,
   * cancelled, or dead-lettered because its last attempt was lost).
   */
  async function claimOrDefer(job: Job, token: string | undefined, payload: JobPayload): Promise<ClaimResponse | undefined> {
    let answer: ClaimAnswer;
    try {
      answer = await deps.client.claim(payload.runId, deps.runnerId);
    } catch (err) {
      const code = isOrderlyError(err) ? err.code : 'ORDERLY_E_INTERNAL';
      if (code === 'ORDERLY_E_RUN_NOT_CLAIMABLE') {
        deps.log.info({ runId: payload.runId }, 'run no longer claimable (finished, cancelled or dead-lettered); not run');
        return undefined;
      }
      // No attempt was started: a control room that cannot be reached is asked again later.
      if (isOrderlyError(err) && err.retryable) {
        deps.log.warn({ runId: payload.runId, code }, 'claim failed; asking again later');
        return retryLater(job, token);
      }
      deps.log.warn({ runId: payload.runId, code }, 'claim refused; the job is dropped');
      throw new UnrecoverableError(code);
    }
    if ('retryInMs' in answer) {
      deps.log.warn({ runId: payload.runId, lostAttempt: answer.lostAttempt, retryInMs: answer.retryInMs }, 'previous attempt was lost; retrying after the backoff');
      return delay(job, token, answer.retryInMs);
    }
    return answer;
  }

  const worker = new Worker(
    runQueueName(deps.segment),
    async (job: Job, token?: string) => {
      let payload: JobPayload;
      try {
        payload = verifyJob(job.data, deps.controlRoomSigningKey, deps.segment);
      } catch (err) {
        return refuse(job, err);
      }
      // The package is fetched and admitted before the claim, so a package this runner must not run
      // (tampered, publisher key revoked, no valid release for its channel) starts no attempt: the
      // job is refused and the control room dead-letters the run (the verified job names it).
      let bot: VerifiedBot;
      try {
        bot = await deps.cache.get(payload);
      } catch (err) {
        if (isOrderlyError(err) && err.retryable) return retryLater(job, token);
        if (isOrderlyError(err)) return refuse(job, new OrderlyError(err.code, err.message, { ...err.details, runId: payload.runId }));
        throw err;
      }
      const claim = await claimOrDefer(job, token, payload);
      if (!claim) return { ok: false };
      const attempt = claim.attempt;
      const final = (retryable: boolean) => !retryable || claim.final;
      const log = deps.log.child({ runId: payload.runId, bot: payload.bot.name, attempt });
      const started = Date.now();
      const runLog = new RunLog((batch) => deps.reports.logs(payload.runId, attempt, batch));
      try {
        const result = await execute(payload, bot, claim, runLog, log);
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
    {
      connection: deps.connection,
      prefix: deps.prefix,
      concurrency: deps.hosts.length,
      autorun: true,
      maxStalledCount: NEVER_FAIL_FOR_STALLING,
      ...(deps.lockDurationMs ? { lockDuration: deps.lockDurationMs } : {}),
      ...(deps.stalledIntervalMs ? { stalledInterval: deps.stalledIntervalMs } : {}),
    },
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
