import { z } from 'zod';
import { RunId } from '../ids';

/**
 * Cancellations travel from the control room to runners on a Redis channel under the queue
 * prefix (stacks that share a Redis do not hear each other). The message is a run id and nothing
 * else: it can only abort a bot, never make one run.
 */
export const cancelChannel = (prefix: string): string => `${prefix}:orderly.cancel`;

export const CancelMessage = z.strictObject({ v: z.literal(1), runId: RunId });
export type CancelMessage = z.infer<typeof CancelMessage>;
