import { randomBytes, randomUUID } from 'node:crypto';
import { appendFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import {
  ClaimResponse,
  createLogger,
  createRedactor,
  declaredPhiFromInput,
  digestOf,
  ErrorBody,
  errorBody,
  isOrderlyError,
  LogLine,
  OrderlyError,
  parseManifest,
  RunFlag,
  StepBeginResponse,
  validateInput,
} from '@orderly/shared';
import type { Logger } from '@orderly/shared';
import type { RunnerConfig } from '../config';
import type { VerifiedBot } from '../packages/cache';
import { ActiveRuns } from '../pipeline/active-runs';
import type { ControlRoomPort } from '../pipeline/ports';
import { toErrorBody } from '../pipeline/report';
import { runBotStep } from '../pipeline/run-bot';
import { RunLog } from '../pipeline/run-log';
import { StartedSandbox, startSandboxStep } from '../pipeline/start-sandbox';
import { createSandboxPool } from '../sandbox/runner-sandboxes';
import { loadTryConfig } from './config';

/**
 * What `orderly bot try` hands to `orderly-runner try` on stdin: the bot as `orderly bot pack`
 * bundles it (manifest and bundle), the input, the secrets read from the developer's local file,
 * and where the outcome goes. Untrusted like a job: checked again here.
 */
export const TryRequest = z.strictObject({
  manifest: z.unknown(),
  code: z.string().min(1),
  input: z.unknown(),
  secrets: z.record(z.string(), z.string()),
  out: z.string().min(1),
});
export type TryRequest = z.infer<typeof TryRequest>;

/** The files a try writes to its out directory. */
export const TRY_FILES = { result: 'result.json', error: 'error.json', log: 'log.jsonl', screenshots: 'screenshots' } as const;

/** The outcome `orderly-runner try` prints (one JSON line on stdout); every field already redacted. */
export interface TryOutcome {
  ok: boolean;
  /** The result as it would leave a runner: the secrets masked out of it (flag `secret_in_result`). */
  result?: unknown;
  flags?: RunFlag[];
  error?: ErrorBody;
  /** Undefined when nothing was run (the request itself was refused). */
  out?: string;
  sandbox: 'bwrap' | 'none';
  durationMs: number;
  lines: LogLine[];
  screenshots: string[];
}

/** A credential name set that is not exactly the manifest's: refused before anything runs. */
export function checkTrySecrets(declared: readonly string[], secrets: Readonly<Record<string, string>>): void {
  const missing = declared.filter((name) => !Object.hasOwn(secrets, name));
  const undeclared = Object.keys(secrets).filter((name) => !declared.includes(name));
  if (missing.length || undeclared.length) {
    const parts = [missing.length ? `missing ${missing.join(', ')}` : '', undeclared.length ? `not declared in bot.json: ${undeclared.join(', ')}` : ''].filter(
      Boolean,
    );
    throw new OrderlyError('ORDERLY_E_TRY_SECRETS_INVALID', `the secrets do not match the credentials the manifest declares (${parts.join('; ')})`, {
      missing,
      undeclared,
    });
  }
}

/** Screenshot files: the (already redacted) name made safe for a path, numbered so none replaces another. */
function screenshotFile(index: number, name: string): string {
  const safe =
    name
      .replace(/[^A-Za-z0-9._-]/g, '_')
      .replace(/^\.+/, '')
      .slice(0, 100) || 'screenshot';
  return `${String(index).padStart(2, '0')}-${safe}.png`;
}

/**
 * The control room's part of a run, played locally: step checkpoints kept in memory for this one
 * attempt (a step name used twice is refused, as the control room does), screenshots written to
 * the out directory. No network, no Redis, no Vault.
 */
function localControlRoom(dir: string, screenshots: string[]): Pick<ControlRoomPort, 'beginStep' | 'completeStep' | 'uploadScreenshot'> {
  const begun = new Set<string>();
  return {
    beginStep: async (_runId, _attempt, _fence, name): Promise<StepBeginResponse> => {
      if (begun.has(name)) throw new OrderlyError('ORDERLY_E_STEP_INVALID', `step ${name} is used twice in this run`);
      begun.add(name);
      return { state: 'new' };
    },
    completeStep: async () => undefined,
    uploadScreenshot: async (_runId, _attempt, name, png) => {
      const file = screenshotFile(screenshots.length + 1, name);
      screenshots.push(file);
      writeFileSync(join(dir, file), png, { mode: 0o600 });
    },
  };
}

/**
 * Runs one bot once on this machine with the runner's own pieces: the sandbox pool (bwrap,
 * seccomp, limits, an egress proxy set to the manifest's hosts), the start-sandbox and run-bot
 * steps, the run log with the run's redactor (secrets and declared PHI), and the result's secret
 * masking. In place of the control room: a synthetic claim, local step checkpoints and screenshot
 * files. Resolves with the outcome; rejects only for a request refused before anything ran.
 */
export async function tryBot(request: TryRequest, config: RunnerConfig, log: Logger, signal?: AbortSignal): Promise<TryOutcome> {
  const startedAt = Date.now();
  const manifest = parseManifest(JSON.stringify(request.manifest));
  const input = validateInput(manifest.input, request.input);
  checkTrySecrets(manifest.credentials, request.secrets);
  const secrets = request.secrets;
  const phi = declaredPhiFromInput(manifest.phi, input);
  // Built before anything is written: a secret too short to mask is refused here, not after the run.
  const redactor = createRedactor({ secrets: Object.values(secrets), phi });

  const out = request.out;
  const shotsDir = join(out, TRY_FILES.screenshots);
  for (const file of Object.values(TRY_FILES)) rmSync(join(out, file), { recursive: true, force: true });
  mkdirSync(shotsDir, { recursive: true, mode: 0o700 });
  const logPath = join(out, TRY_FILES.log);
  writeFileSync(logPath, '', { mode: 0o600 });
  const lines: LogLine[] = [];
  const keep = (batch: LogLine[]) => {
    lines.push(...batch);
    if (batch.length) appendFileSync(logPath, batch.map((line) => `${JSON.stringify(line)}\n`).join(''));
  };
  const runLog = new RunLog(async (batch) => keep(batch));
  runLog.useRedactor(redactor);

  const runId = randomUUID();
  const claim: ClaimResponse = ClaimResponse.parse({
    runId,
    attempt: 1,
    final: true,
    idempotencyKey: `try-${runId}`,
    input,
    fence: randomBytes(16).toString('base64url'),
    leaseMs: 30_000,
  });
  const bot: VerifiedBot = { digest: digestOf(Buffer.from(request.code)), manifest, code: request.code };
  const screenshots: string[] = [];
  const pool = createSandboxPool(config, log);
  const runs = new ActiveRuns(pool.size);
  const abort = () => runs.abort(runId);
  signal?.addEventListener('abort', abort, { once: true });
  let started: StartedSandbox | undefined;
  let outcome: Pick<TryOutcome, 'ok' | 'result' | 'flags' | 'error'>;
  try {
    if (config.sandbox.mode === 'none') runLog.runner('warn', 'sandbox: none (ORDERLY_SANDBOX=none, development only): this run was not contained');
    started = await startSandboxStep(runs, pool);
    runs.add(runId, started.sandbox);
    if (signal?.aborted) throw new OrderlyError('ORDERLY_E_RUN_CANCELLED', 'the try was interrupted before its bot started');
    const leaving = await runBotStep(
      { claim, bot, input, secrets, phi, sandbox: started.sandbox, runLog, deadline: startedAt + manifest.timeoutSeconds * 1000, denials: { egress: 0 } },
      { client: localControlRoom(shotsDir, screenshots), log },
    );
    outcome = { ok: true, result: leaving.result, ...(leaving.flags ? { flags: leaving.flags } : {}) };
    writeFileSync(
      join(out, TRY_FILES.result),
      `${JSON.stringify(outcome.flags ? { result: leaving.result, flags: outcome.flags } : { result: leaving.result }, null, 2)}\n`,
      { mode: 0o600 },
    );
  } catch (err) {
    const error = signal?.aborted ? errorBody('ORDERLY_E_RUN_CANCELLED', 'the try was interrupted; its bot was aborted') : runLog.redactError(toErrorBody(err));
    runLog.runner('error', `the try failed: ${error.code}`);
    outcome = { ok: false, error };
    writeFileSync(join(out, TRY_FILES.error), `${JSON.stringify(error, null, 2)}\n`, { mode: 0o600 });
  } finally {
    signal?.removeEventListener('abort', abort);
    runs.remove(runId);
    await started?.release();
    await pool.close();
  }
  keep(runLog.rest());
  return { ...outcome, out, sandbox: config.sandbox.mode, durationMs: Date.now() - startedAt, lines, screenshots: screenshots.map((f) => join(shotsDir, f)) };
}

async function readStdin(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) text += (chunk as Buffer).toString('utf8');
  return text;
}

/**
 * `orderly-runner try`: one request on stdin, one outcome on stdout (a JSON line), exit code 0 for
 * a bot that succeeded and 1 otherwise. SIGINT or SIGTERM aborts the bot; its sandbox is destroyed.
 */
export async function runTryCommand(): Promise<number> {
  const started = Date.now();
  const controller = new AbortController();
  const stop = () => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let outcome: TryOutcome;
  let mode: 'bwrap' | 'none' = 'bwrap';
  try {
    const config = loadTryConfig();
    mode = config.sandbox.mode;
    // The runner's own log goes to stderr: stdout carries the outcome only.
    const log = createLogger({ level: config.logLevel, name: 'runner-try' }, process.stderr);
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readStdin());
    } catch {
      throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'orderly-runner try reads one JSON request on stdin (as `orderly bot try` writes it)');
    }
    const request = TryRequest.safeParse(parsed);
    if (!request.success) throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'the try request on stdin is not {manifest, code, input, secrets, out}');
    outcome = await tryBot(request.data, config, log, controller.signal);
  } catch (err) {
    // Refused before anything ran: the code and a message that names no value.
    outcome = {
      ok: false,
      error: isOrderlyError(err) ? err.toJSON() : toErrorBody(err),
      sandbox: mode,
      durationMs: Date.now() - started,
      lines: [],
      screenshots: [],
    };
  } finally {
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
  }
  await new Promise<void>((resolve) => process.stdout.write(`${JSON.stringify(outcome)}\n`, () => resolve()));
  return outcome.ok ? 0 : 1;
}
