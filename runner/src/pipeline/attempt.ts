import type { KeyObject } from 'node:crypto';
import {
  ClaimResponse,
  createRedactor,
  declaredPhiFromInput,
  hasCode,
  isOrderlyError,
  JobPayload,
  OrderlyError,
  SegmentName,
  validateInput,
} from '@orderly/shared';
import type { Logger } from '@orderly/shared';
import type { CredentialLease } from '../credentials/lease';
import type { VerifiedBot } from '../packages/cache';
import { ActiveRuns } from './active-runs';
import { admitPackageStep } from './admit-package';
import { keepAttemptLease } from './attempt-lease';
import { claimStep } from './claim';
import { HaltJob, JobFate, RefuseJob } from './halt-job';
import { leaseCredentialsStep } from './lease-credentials';
import type { CancellationPort, ControlRoomPort, CredentialLeaser, PackagePort, ReportPort, SandboxPort } from './ports';
import { reportFailed, reportRefusal, reportSucceeded } from './report';
import type { ResultLeaving } from './result-redaction';
import { runBotStep } from './run-bot';
import { RunLog } from './run-log';
import { StartedSandbox, startSandboxStep } from './start-sandbox';
import { verifyJobStep } from './verify-job';

export interface PipelineDeps {
  segment: SegmentName;
  runnerId: string;
  controlRoomSigningKey: KeyObject;
  client: ControlRoomPort;
  packages: PackagePort;
  /** A fresh sandbox for every run, from one slot per concurrent run. */
  sandboxes: SandboxPort;
  /** `none`: development without a sandbox, said on every run's log. */
  sandboxMode?: 'bwrap' | 'none' | undefined;
  reports: ReportPort;
  /** Vault, for bots that declare credentials; undefined: such runs fail with a clear code. */
  credentials?: CredentialLeaser | undefined;
  /** Runs the control room cancelled: their bots are aborted and their jobs fail without retry. */
  cancellations?: CancellationPort | undefined;
  log: Logger;
  /** Called when bot code starts, with the time the browser context took (for dispatch latency). */
  onBotStarted?: ((runId: string, contextMs: number) => void) | undefined;
  /** The attempt lease asked for at claim (default: the control room's, 30 s). */
  attemptLeaseMs?: number | undefined;
  /** Jitter of the waits (tests make it fixed). */
  random?: () => number;
}

/** A job off the queue: its id and its (untrusted) data. */
export interface QueueJob {
  id?: string | undefined;
  data: unknown;
}

export interface Pipeline {
  /** Runs one job through every step; resolves with what becomes of the job, never rejects. */
  process(job: QueueJob): Promise<JobFate>;
  /** The jobs in flight and their sandboxes (for the shutdown). */
  readonly runs: ActiveRuns;
}

/**
 * The runner's pipeline for one segment, as named steps: verify the signed job, admit its
 * package, claim the run, then one attempt (start its sandbox, lease its credentials, run the
 * bot, report). Each step decides what its failure means for the job; this composer runs them in
 * order and always tears down what the attempt held: lease renewal, credentials, cancel hook,
 * sandbox, slot, whatever failed.
 */
export function createPipeline(deps: PipelineDeps): Pipeline {
  const runs = new ActiveRuns(deps.sandboxes.size);

  /** One attempt of a claimed run: the steps from the sandbox to the report. */
  async function attempt(payload: JobPayload, bot: VerifiedBot, claim: ClaimResponse): Promise<JobFate> {
    const log = deps.log.child({ runId: payload.runId, bot: payload.bot.name, attempt: claim.attempt });
    const startedAt = Date.now();
    const runLog = new RunLog((batch) => deps.reports.logs(payload.runId, claim.attempt, batch));
    const report = { claim, runLog, startedAt, log };
    try {
      return await reportSucceeded(deps.reports, report, await execute(payload, bot, claim, runLog, log));
    } catch (err) {
      if (hasCode(err, 'ORDERLY_E_RUN_NOT_CLAIMABLE')) {
        log.info('run no longer claimable (cancelled or finished); not run');
        return { kind: 'done', ok: false };
      }
      // Also a success that could not be reported: the attempt is reported failed (retried unless final).
      return reportFailed(deps.reports, report, err, deps.cancellations?.wasCancelled(payload.runId) ?? false);
    }
  }

  async function execute(payload: JobPayload, bot: VerifiedBot, claim: ClaimResponse, runLog: RunLog, log: Logger): Promise<ResultLeaving> {
    // Defence in depth: the control room validated the input; so does the side that runs it.
    const input = validateInput(bot.manifest.input, claim.input);
    // Fencing: the lease is renewed while the run is active; a replaced attempt's bot is stopped.
    const renewal = keepAttemptLease({
      client: deps.client,
      runId: payload.runId,
      attempt: claim.attempt,
      fence: claim.fence,
      leaseMs: claim.leaseMs,
      log,
      onLost: () => runs.abort(payload.runId),
    });
    const deadline = Date.now() + bot.manifest.timeoutSeconds * 1000;
    let started: StartedSandbox | undefined;
    let lease: CredentialLease | undefined;
    let detachCancel: (() => void) | undefined;
    try {
      started = await startSandboxStep(runs, deps.sandboxes);
      const { sandbox } = started;
      runs.add(payload.runId, sandbox);
      detachCancel = deps.cancellations?.attach(payload.runId, () => sandbox.abort(payload.runId));
      if (deps.sandboxMode === 'none') runLog.runner('warn', 'sandbox: none (ORDERLY_SANDBOX=none, development only): this run was not contained');
      lease = await leaseCredentialsStep(claim, bot, { leaser: deps.credentials, client: deps.client, log });
      // From here on every line and error is masked for this run's own values (invariant 4).
      const phi = declaredPhiFromInput(bot.manifest.phi, input);
      const secrets = lease?.secrets ?? {};
      runLog.useRedactor(createRedactor({ secrets: Object.values(secrets), phi }));
      if (deps.cancellations?.wasCancelled(payload.runId)) throw new OrderlyError('ORDERLY_E_RUN_CANCELLED', 'the run was cancelled before its bot started');
      return await runBotStep({ claim, bot, input, secrets, phi, sandbox, runLog, deadline }, { client: deps.client, log, onBotStarted: deps.onBotStarted });
    } finally {
      renewal.stop();
      // Whatever happened: the run's token is revoked before the attempt is reported.
      await lease?.release();
      detachCancel?.();
      runs.remove(payload.runId);
      // The sandbox destroys itself after its run; one that never ran is destroyed here.
      await started?.release();
    }
  }

  async function processJob(job: QueueJob): Promise<JobFate> {
    try {
      const payload = verifyJobStep(job.data, deps);
      const bot = await admitPackageStep(payload, { packages: deps.packages, ...(deps.random ? { random: deps.random } : {}) });
      const claim = await claimStep(payload, {
        client: deps.client,
        runnerId: deps.runnerId,
        attemptLeaseMs: deps.attemptLeaseMs,
        log: deps.log,
        ...(deps.random ? { random: deps.random } : {}),
      });
      return await attempt(payload, bot, claim);
    } catch (err) {
      if (err instanceof HaltJob) return err.fate;
      try {
        if (err instanceof RefuseJob) return await reportRefusal(deps.reports, deps.log, job.id, err);
        throw err;
      } catch (failure) {
        // A report that could not be sent, or a failure no step expected: the job is retried. Only
        // the code is kept; an unexpected error's message is not ours to pass on.
        const code = isOrderlyError(failure) ? failure.code : 'ORDERLY_E_INTERNAL';
        deps.log.error({ jobId: job.id, code }, 'job failed outside a run attempt; it is retried');
        return { kind: 'retry', code };
      }
    }
  }

  return { runs, process: (job) => runs.track(processJob(job)) };
}
