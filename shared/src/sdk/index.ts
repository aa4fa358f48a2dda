import type { Page } from 'playwright-core';

/**
 * The bot SDK. It is bundled into every bot package, so it imports nothing at run time:
 * types only. Keep it that way.
 */

/** Structured logger handed to bots (a pino child underneath). Objects first, constant messages. */
export interface BotLogger {
  trace(obj: object | string, msg?: string): void;
  debug(obj: object | string, msg?: string): void;
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
}

export interface StepOptions {
  /**
   * What to do when a previous attempt started this step but did not record it done (it died in
   * the middle): `'rerun'` runs it again; `{ verify }` asks first (true: the step counts as done
   * and returns `undefined`; false: it runs again). Absent: the step throws the non-retryable
   * ORDERLY_E_STEP_UNCERTAIN and the run is dead-lettered for an operator.
   */
  onUncertain?: 'rerun' | { verify: () => Promise<boolean> };
}

export interface BotContext<Input extends object = Record<string, unknown>> {
  /** A page in a fresh browser context, closed after the run; only manifest hosts are reachable. */
  readonly page: Page;
  /** The run input, validated against the manifest's input schema. */
  readonly input: Input;
  readonly log: BotLogger;
  /** Aborted when the run times out, is cancelled, or the runner shuts down. */
  readonly signal: AbortSignal;
  /** One key per run from creation to completion: pass it to target systems that accept one. */
  readonly idempotencyKey: string;
  readonly runId: string;
  readonly attempt: number;
  /** The credentials the manifest declares, leased for this run only. */
  readonly secrets: Readonly<Record<string, string>>;
  /**
   * `fetch` through the run sandbox's egress proxy: only the manifest's hosts answer, every
   * redirect hop is checked again, and a refusal rejects with an error whose `code` is
   * ORDERLY_E_EGRESS_REFUSED.
   * (The sandbox has no other network; the global `fetch` goes the same way.)
   */
  readonly fetch: typeof fetch;
  /**
   * A screenshot of the page, masked before it leaves the bot host (form fields, the manifest's
   * PHI selectors, and any text holding a declared value, a secret or a PHI shape), stored
   * encrypted with the run.
   */
  screenshot(name: string): Promise<void>;
  /**
   * A named step whose completion is recorded, so that a retry does not repeat it: a recorded
   * step returns its recorded result (JSON, at most 64 KiB) without running `fn`. Names are 1-100
   * letters, digits, `.`, `_`, `:` or `-`, each used once per run.
   */
  step<T>(name: string, fn: () => Promise<T>, options?: StepOptions): Promise<T>;
}

export interface BotDefinition<Input extends object = Record<string, unknown>, Result = unknown> {
  readonly orderlyBot: 1;
  run(ctx: BotContext<Input>): Promise<Result>;
}

/** Declares a bot; the bot's entry module exports the result as its default export. */
export function defineBot<Input extends object = Record<string, unknown>, Result = unknown>(definition: {
  run(ctx: BotContext<Input>): Promise<Result>;
}): BotDefinition<Input, Result> {
  return { orderlyBot: 1, run: definition.run };
}

/**
 * The work itself cannot succeed (member not found, claim rejected): never retried. The bot host
 * recognises it by `code`, since each bot bundles its own copy of this class.
 */
export class BusinessError extends Error {
  readonly code = 'ORDERLY_E_BOT_BUSINESS';
  constructor(message: string) {
    super(message);
    this.name = 'BusinessError';
  }
}
