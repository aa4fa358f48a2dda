import { ClaimResponse, isOrderlyError, OrderlyError, SandboxDenials } from '@orderly/shared';
import type { Logger } from '@orderly/shared';
import type { VerifiedBot } from '../packages/cache';
import type { ControlRoomPort, RunSandbox } from './ports';
import { ResultLeaving, resultLeavingRun } from './result-redaction';
import type { RunLog } from './run-log';
import { completeDurably } from './step-completion';

export interface RunBotInput {
  claim: ClaimResponse;
  bot: VerifiedBot;
  /** The claimed input, validated against the manifest. */
  input: Record<string, unknown>;
  /** The run's leased secrets ({} when it declares none). */
  secrets: Readonly<Record<string, string>>;
  phi: Array<{ field: string; value: string }>;
  sandbox: RunSandbox;
  runLog: RunLog;
  /** When the run's own time is up: step completions are retried until then. */
  deadline: number;
  /** The attempt's count of what its sandbox refused (reported with its outcome). */
  denials: SandboxDenials;
}

/**
 * Step 6: runs the bot in its sandbox. Its lines go to the run's log (redacted there), its step
 * checkpoints to the control room under this attempt and fence, its screenshots are uploaded (a
 * lost one is logged, it does not fail the run). A failed bot is its error, coded; a result
 * leaves masked of the run's secrets.
 */
export async function runBotStep(
  run: RunBotInput,
  deps: {
    client: Pick<ControlRoomPort, 'beginStep' | 'completeStep' | 'uploadScreenshot'>;
    log: Logger;
    onBotStarted?: ((runId: string, contextMs: number) => void) | undefined;
  },
): Promise<ResultLeaving> {
  const { claim, bot, runLog } = run;
  const { runId, attempt, fence } = claim;
  const uploads: Promise<void>[] = [];
  const outcome = await run.sandbox.run(
    {
      runId,
      attempt,
      idempotencyKey: claim.idempotencyKey,
      botName: bot.manifest.name,
      code: bot.code,
      input: run.input,
      secrets: run.secrets,
      hosts: bot.manifest.hosts,
      timeoutMs: bot.manifest.timeoutSeconds * 1000,
      browser: bot.manifest.browser,
      phi: run.phi,
      phiSelectors: bot.manifest.phiSelectors,
      screenshotAllowFields: bot.manifest.screenshotAllowFields,
    },
    {
      onLine: (line) => runLog.add(line),
      // Host and port only; the host name is the bot's choice, so it goes through the redactor.
      onEgressRefused: (r) => {
        run.denials.egress++;
        runLog.runner('warn', `egress refused: ${r.host}:${r.port} (${r.reason})`);
      },
      onStarted: (contextMs) => deps.onBotStarted?.(runId, contextMs),
      // Checkpoints are asked for and recorded under this attempt's number only.
      onStep: async (call) =>
        call.op === 'begin'
          ? deps.client.beginStep(runId, attempt, fence, call.name, call.rerun)
          : completeDurably(() => deps.client.completeStep(runId, attempt, fence, call.name, call.result), {
              deadline: run.deadline,
              log: deps.log,
              step: call.name,
            }).then(() => ({ state: 'recorded' as const })),
      // Masked in the host already; stored encrypted by the control room.
      onScreenshot: (shot) => {
        if (shot.failedClosed !== 'none')
          runLog.runner('warn', `screenshot ${shot.name} masked whole ${shot.failedClosed}: masking could not be done element by element`);
        uploads.push(
          deps.client
            .uploadScreenshot(runId, attempt, shot.name, shot.png)
            .catch((err: unknown) => runLog.runner('warn', `screenshot ${shot.name} not stored: ${isOrderlyError(err) ? err.code : 'error'}`)),
        );
      },
    },
  );
  await Promise.all(uploads);
  if (!outcome.ok) throw new OrderlyError(outcome.error.code, outcome.error.message, outcome.error.details, { retryable: outcome.error.retryable });
  return resultLeavingRun(outcome.result, run.secrets, (msg) => runLog.runner('warn', msg));
}
