import { z } from 'zod';
import { BotName, BotVersion, SegmentName } from '../ids';
import { ErrorBodySchema } from '../job/report';
import { RUN_STATUSES } from '../job/run-state';

/**
 * `POST /v1/batches`: the items as a JSON array, or the text of a CSV or JSONL file (parsed by the
 * control room, `items.ts`). `keyColumn` names the field whose value keys each item; without it an
 * item's key is the item itself (identical items are one item, refused as a duplicate).
 */
export const CreateBatchRequest = z
  .strictObject({
    bot: BotName,
    version: BotVersion.optional(),
    segment: SegmentName.optional(),
    keyColumn: z.string().min(1).max(64).optional(),
    items: z.array(z.record(z.string(), z.unknown())).optional(),
    csv: z.string().optional(),
    jsonl: z.string().optional(),
  })
  .refine((b) => [b.items, b.csv, b.jsonl].filter((x) => x !== undefined).length === 1, { message: 'give exactly one of items, csv and jsonl' });
export type CreateBatchRequest = z.infer<typeof CreateBatchRequest>;

export const BatchProgress = z.object({
  total: z.number(),
  counts: z.record(z.enum(RUN_STATUSES), z.number()),
  /** Items whose run ended (succeeded, failed, cancelled, discarded) or waits in the dead-letter queue. */
  done: z.number(),
  percent: z.number(),
});
export type BatchProgress = z.infer<typeof BatchProgress>;

/** `open`: its runs are started as runners free up; `paused`: its waiting runs are not; `cancelled`: for good. */
export const BATCH_STATES = ['open', 'paused', 'cancelled'] as const;
export const BatchState = z.enum(BATCH_STATES);
export type BatchState = z.infer<typeof BatchState>;

export const BatchView = z.object({
  id: z.string(),
  state: BatchState,
  bot: z.string(),
  version: z.string(),
  segment: z.string(),
  keyColumn: z.string().nullable(),
  createdBy: z.string(),
  createdAt: z.string(),
  progress: BatchProgress,
});
export type BatchView = z.infer<typeof BatchView>;

/** One item's outcome without PHI: where it was in the file, its run, state and error code. */
export const BatchItemView = z.object({
  position: z.number(),
  line: z.number().nullable(),
  runId: z.string(),
  retries: z.number(),
  status: z.enum(RUN_STATUSES),
  attempts: z.number(),
  finishedAt: z.string().nullable(),
  error: ErrorBodySchema.optional(),
});
export type BatchItemView = z.infer<typeof BatchItemView>;

export const BatchDetailView = BatchView.extend({ items: z.array(BatchItemView) });
export type BatchDetailView = z.infer<typeof BatchDetailView>;

export const CreateBatchAnswer = z.object({ batch: BatchView, created: z.boolean(), runsCreated: z.number(), runsExisting: z.number() });
export type CreateBatchAnswer = z.infer<typeof CreateBatchAnswer>;

export const BatchResultsView = z.object({
  batchId: z.string(),
  items: z.array(
    z.object({ position: z.number(), line: z.number().nullable(), runId: z.string(), status: z.enum(RUN_STATUSES), input: z.unknown(), result: z.unknown() }),
  ),
});

export const RetryBatchAnswer = z.object({ batchId: z.string(), requeued: z.number(), runs: z.array(z.object({ position: z.number(), runId: z.string() })) });

/** `pause` (`runs`: waiting runs whose queued job was withdrawn), `resume` (runs queued again), `cancel` (runs cancelled). */
export const BatchStateAnswer = z.object({ batchId: z.string(), state: BatchState, previous: BatchState, runs: z.number() });
export type BatchStateAnswer = z.infer<typeof BatchStateAnswer>;
