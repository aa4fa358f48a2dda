import { randomUUID } from 'node:crypto';
import { chromium } from 'playwright-core';
import { createRedactor, LogLine, OrderlyError, StepBeginResponse } from '@orderly/shared';
import type { BotContext, BotDefinition, BotLogger } from '@orderly/shared/sdk';
import { createStepRunner, StepError } from '../bot-host/steps';
import { RunLog } from '../pipeline/run-log';
import { loadTryConfig } from './config';

/**
 * The test kit for bot developers (`@orderly/runner/testing`): runs a bot's `run` in-process
 * against a page of a real Chromium (the runner's `ORDERLY_CHROMIUM_PATH`, /usr/bin/chromium by
 * default), with a local ctx: `ctx.step` is the bot host's own step runner over in-memory
 * checkpoints, the log goes through the run's redactor (the secrets given here, plus the
 * patterns). Not a sandbox: `orderly bot try` is the full local run; this is for unit tests.
 *
 * Replaying a crash: `done` lists steps an earlier attempt recorded (as the control room reports
 * them on the next attempt); `crashAfter` stops the attempt right after that step is recorded.
 * `uncertain` lists steps an earlier attempt began and never recorded, so `onUncertain` runs.
 */
export interface TestRunOptions<Input extends object> {
  input: Input;
  secrets?: Record<string, string>;
  /** Step name -> recorded result, reported done to this attempt. */
  done?: Record<string, unknown>;
  /** Steps reported uncertain (begun by an earlier attempt, never recorded done). */
  uncertain?: readonly string[];
  /** The attempt ends (as a crash) right after this step is recorded done. */
  crashAfter?: string;
  attempt?: number;
  chromiumPath?: string;
  /** Routes given to the page context (e.g. a local page served by `route.fulfill`). */
  setup?: (ctx: { page: BotContext['page'] }) => Promise<void>;
}

export interface TestStep {
  name: string;
  /** `ran`: fn ran and was recorded; `replayed`: returned an earlier attempt's result; `verified`: onUncertain verify said done. */
  outcome: 'ran' | 'replayed' | 'verified';
  result?: unknown;
}

export interface TestRunOutcome<Result> {
  ok: boolean;
  result?: Result;
  /** The error's code when the bot failed (`TEST_CRASH` for `crashAfter`). */
  errorCode?: string;
  error?: unknown;
  crashed: boolean;
  steps: TestStep[];
  /** Every step as recorded after this attempt: pass it as `done` to play the next attempt. */
  recorded: Record<string, unknown>;
  lines: LogLine[];
}

/** Thrown inside the bot at `crashAfter`: the attempt ends there, as if the runner died. */
class TestCrash extends Error {
  readonly code = 'TEST_CRASH';
}

export async function runBotForTest<Input extends object, Result>(
  bot: BotDefinition<Input, Result>,
  options: TestRunOptions<Input>,
): Promise<TestRunOutcome<Result>> {
  const secrets = options.secrets ?? {};
  const lines: LogLine[] = [];
  const runLog = new RunLog(async (batch) => void lines.push(...batch));
  runLog.useRedactor(createRedactor({ secrets: Object.values(secrets) }));
  const recorded: Record<string, unknown> = { ...(options.done ?? {}) };
  const uncertain = new Set(options.uncertain ?? []);
  const steps: TestStep[] = [];
  const pending = new Map<string, TestStep['outcome']>();
  let crashed = false;

  const step = createStepRunner(async (call) => {
    if (call.op === 'begin') {
      if (Object.hasOwn(recorded, call.name)) {
        steps.push({ name: call.name, outcome: 'replayed', result: recorded[call.name] });
        return { state: 'done', result: recorded[call.name] } as StepBeginResponse;
      }
      if (uncertain.has(call.name) && !call.rerun) return { state: 'uncertain' } as StepBeginResponse;
      pending.set(call.name, call.rerun ? 'verified' : 'ran');
      return { state: 'new' } as StepBeginResponse;
    }
    recorded[call.name] = call.result;
    // A verify that said done completes without fn having run; a rerun after verify=false runs fn.
    steps.push({ name: call.name, outcome: 'ran', ...(call.result === undefined ? {} : { result: call.result }) });
    pending.delete(call.name);
    if (call.name === options.crashAfter) {
      crashed = true;
      throw new TestCrash(`test crash after step ${call.name}`);
    }
    return { state: 'recorded' };
  });

  // Tell a verified completion from a rerun: fn runs only in the latter.
  const trackedStep: BotContext<Input>['step'] = (name, fn, stepOptions) => {
    let ran = false;
    return step(
      name,
      async () => {
        ran = true;
        return fn();
      },
      stepOptions,
    ).then((value) => {
      const last = steps[steps.length - 1];
      if (!ran && last?.name === name && last.outcome === 'ran') last.outcome = 'verified';
      return value;
    });
  };

  const logAt =
    (level: LogLine['level']) =>
    (obj: object | string, msg?: string): void => {
      const text = typeof obj === 'string' ? obj : JSON.stringify(msg === undefined ? obj : { ...obj, msg });
      runLog.add({ at: new Date().toISOString(), level, source: 'bot', msg: text });
    };
  const log: BotLogger = { trace: logAt('trace'), debug: logAt('debug'), info: logAt('info'), warn: logAt('warn'), error: logAt('error') };

  const browser = await chromium.launch({ executablePath: options.chromiumPath ?? loadTryConfig().chromiumPath });
  const controller = new AbortController();
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    await options.setup?.({ page });
    const runId = randomUUID();
    const ctx: BotContext<Input> = {
      page,
      input: options.input,
      log,
      signal: controller.signal,
      idempotencyKey: `test-${runId}`,
      runId,
      attempt: options.attempt ?? 1,
      secrets,
      fetch: globalThis.fetch,
      screenshot: async (name) => {
        await page.screenshot({ animations: 'disabled' });
        log.info({ name }, 'screenshot taken');
      },
      step: trackedStep,
    };
    const result = await bot.run(ctx);
    await runLog.flush();
    return { ok: true, result, crashed, steps, recorded, lines: [...lines, ...runLog.rest()].filter(unique()) };
  } catch (err) {
    await runLog.flush();
    const errorCode =
      err instanceof StepError ? err.body.code : typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : undefined;
    return {
      ok: false,
      ...(errorCode ? { errorCode } : {}),
      error: err instanceof OrderlyError ? err.toJSON() : err,
      crashed,
      steps,
      recorded,
      lines: [...lines, ...runLog.rest()].filter(unique()),
    };
  } finally {
    controller.abort();
    await browser.close();
  }
}

function unique(): (line: LogLine) => boolean {
  const seen = new Set<number>();
  return (line) => (seen.has(line.seq) ? false : (seen.add(line.seq), true));
}

/** A crash after `crashAfter`, then the next attempt with the steps recorded so far reported done. */
export async function replayCrash<Input extends object, Result>(
  bot: BotDefinition<Input, Result>,
  options: TestRunOptions<Input> & { crashAfter: string },
): Promise<{ first: TestRunOutcome<Result>; second: TestRunOutcome<Result> }> {
  const first = await runBotForTest(bot, options);
  if (!first.crashed) throw new Error(`the bot never recorded step ${options.crashAfter}: nothing crashed`);
  const { crashAfter: _crash, ...rest } = options;
  const second = await runBotForTest(bot, { ...rest, done: first.recorded, attempt: (options.attempt ?? 1) + 1 });
  return { first, second };
}
