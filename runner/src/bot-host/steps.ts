import { ErrorBody, ErrorCode, STEP_NAME_PATTERN, STEP_RESULT_MAX_BYTES, StepBeginResponse } from '@orderly/shared';
import type { StepOptions } from '@orderly/shared/sdk';
import type { StepCall } from './protocol';

/**
 * An error from the step machinery, carried to the run's outcome as is (code and retryability):
 * an uncertain step must dead-letter the run, not be retried into the same uncertainty.
 */
export class StepError extends Error {
  constructor(readonly body: ErrorBody) {
    super(body.message);
    this.name = 'StepError';
  }
}

const stepError = (code: ErrorCode, message: string, retryable = false) => new StepError({ code, message, retryable, details: {} });

/** Asks the control room (through the runner) about a step; rejects with a StepError. */
export type StepRpc = (call: StepCall) => Promise<StepBeginResponse | { state: 'recorded' }>;

/** A step's value as it is recorded: JSON, at most 64 KiB; `undefined` stays `undefined`. */
function asRecorded(name: string, value: unknown): unknown {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    throw stepError('ORDERLY_E_STEP_INVALID', `step ${name} returned a value that is not JSON`);
  }
  if (text === undefined) return undefined;
  if (Buffer.byteLength(text) > STEP_RESULT_MAX_BYTES)
    throw stepError('ORDERLY_E_STEP_INVALID', `step ${name} returned over ${STEP_RESULT_MAX_BYTES} bytes of JSON`);
  return JSON.parse(text) as unknown;
}

/**
 * `ctx.step` for one attempt. A step recorded done is not run again: its recorded result is
 * returned. A step an earlier attempt started but never recorded done is uncertain: the side
 * effect may have happened. Its `onUncertain` policy decides: `'rerun'` runs it again;
 * `{ verify }` asks the bot (true: treat it as done, with an `undefined` result; false: run it
 * again); no policy: the step throws ORDERLY_E_STEP_UNCERTAIN (not retryable) and an operator
 * decides, because silently repeating a claim submission is the failure this exists to prevent.
 *
 * The value returned is the recorded JSON form on the first run too, so a bot sees the same
 * value whether the step ran now or on an earlier attempt.
 */
export function createStepRunner(rpc: StepRpc): <T>(name: string, fn: () => Promise<T>, options?: StepOptions) => Promise<T> {
  const used = new Set<string>();
  return async <T>(name: string, fn: () => Promise<T>, options?: StepOptions): Promise<T> => {
    if (typeof name !== 'string' || !STEP_NAME_PATTERN.test(name)) {
      throw stepError('ORDERLY_E_STEP_INVALID', 'step names are 1-100 letters, digits, `.`, `_`, `:` or `-`, starting with a letter or digit');
    }
    // One name, one checkpoint: a second use in the same attempt would read the first one's result.
    if (used.has(name)) throw stepError('ORDERLY_E_STEP_INVALID', `step ${name} is used twice in one run`);
    used.add(name);
    let begun = await rpc({ op: 'begin', name, rerun: false });
    if (begun.state === 'done') return begun.result as T;
    if (begun.state === 'uncertain') {
      const policy = options?.onUncertain;
      if (policy === undefined) {
        throw stepError(
          'ORDERLY_E_STEP_UNCERTAIN',
          `step ${name} was started by an earlier attempt that never recorded it done, and it has no onUncertain policy`,
        );
      }
      const verified = policy !== 'rerun' && (await policy.verify()) === true;
      begun = await rpc({ op: 'begin', name, rerun: true });
      if (begun.state === 'done') return begun.result as T;
      if (verified) {
        await rpc({ op: 'complete', name });
        return undefined as T;
      }
    }
    const value = asRecorded(name, await fn());
    await rpc({ op: 'complete', name, ...(value === undefined ? {} : { result: value }) });
    return value as T;
  };
}
