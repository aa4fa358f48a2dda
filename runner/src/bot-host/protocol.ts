import { z } from 'zod';
import { ErrorBodySchema, LogLine, StepBeginResponse } from '@orderly/shared';

/** Messages between the runner and the bot host in a run's sandbox (JSON frames on the sandbox's channel, `sandbox/channel.ts`). */
/**
 * `egressSocket`: the egress proxy's Unix socket, the sandbox's only way out. `yieldCpu`: warm up at
 * the lowest priority (the runner raises it back when a run asks for the sandbox).
 */
export const HostInit = z.object({ type: z.literal('init'), chromiumPath: z.string(), egressSocket: z.string(), yieldCpu: z.boolean() });

export const HostRun = z.object({
  type: z.literal('run'),
  runId: z.string(),
  attempt: z.number().int(),
  idempotencyKey: z.string(),
  botName: z.string(),
  code: z.string(),
  input: z.record(z.string(), z.unknown()),
  secrets: z.record(z.string(), z.string()),
  hosts: z.array(z.string()),
  timeoutMs: z.number().int().positive(),
  /** False: the bot declared `browser: false`; no context is opened and `ctx.page` throws. */
  browser: z.boolean(),
  /** Masking inputs for screenshots: the run's declared PHI values and the manifest's selectors. */
  phi: z.array(z.object({ field: z.string(), value: z.string() })),
  phiSelectors: z.array(z.string()),
  screenshotAllowFields: z.array(z.string()),
});
export type HostRun = z.infer<typeof HostRun>;

export const HostAbort = z.object({ type: z.literal('abort'), runId: z.string() });
/** The runner's answer to a step call: the control room's answer, or the error that stopped it. */
export const HostStepAnswer = z.union([
  z.object({
    type: z.literal('step-answer'),
    runId: z.string(),
    id: z.number().int(),
    ok: z.literal(true),
    answer: z.union([StepBeginResponse, z.object({ state: z.literal('recorded') })]),
  }),
  z.object({ type: z.literal('step-answer'), runId: z.string(), id: z.number().int(), ok: z.literal(false), error: ErrorBodySchema }),
]);
export type HostStepAnswer = z.infer<typeof HostStepAnswer>;
export const ToHost = z.union([HostInit, HostRun, HostAbort, HostStepAnswer]);
export type ToHost = z.infer<typeof ToHost>;

/** A step checkpoint call from bot code, relayed by the runner to the control room. */
export const StepCall = z.discriminatedUnion('op', [
  z.object({ op: z.literal('begin'), name: z.string(), rerun: z.boolean() }),
  z.object({ op: z.literal('complete'), name: z.string(), result: z.unknown().optional() }),
]);
export type StepCall = z.infer<typeof StepCall>;
export const HostStepCall = z.object({ type: z.literal('step'), runId: z.string(), id: z.number().int(), call: StepCall });

export const FromHost = z.union([
  z.object({ type: z.literal('ready') }),
  z.object({ type: z.literal('log'), runId: z.string(), line: LogLine }),
  /** Bot code is about to start; `contextMs` is what the fresh browser context and page took. */
  z.object({ type: z.literal('started'), runId: z.string(), contextMs: z.number() }),
  /** A masked PNG, in base64; `failedClosed` says whether masking had to cover frames or the whole page. */
  z.object({ type: z.literal('screenshot'), runId: z.string(), name: z.string(), png: z.base64(), failedClosed: z.string() }),
  z.object({ type: z.literal('done'), runId: z.string(), ok: z.literal(true), result: z.unknown() }),
  z.object({ type: z.literal('done'), runId: z.string(), ok: z.literal(false), error: ErrorBodySchema }),
  HostStepCall,
]);
export type FromHost = z.infer<typeof FromHost>;
