import { z } from 'zod';
import { ErrorBodySchema } from '../job/report';
import { RUN_STATUSES } from '../job/run-state';

/** Filters shared by the list and bulk requeue. Times filter on when the run was dead-lettered. */
export const DlqFilter = z.strictObject({
  segment: z
    .string()
    .regex(/^[a-z][a-z0-9-]{0,31}$/)
    .optional(),
  bot: z.string().min(1).max(100).optional(),
  errorCode: z
    .string()
    .regex(/^ORDERLY_E_[A-Z_]+$/)
    .optional(),
  since: z.iso.datetime({ offset: true }).optional(),
  until: z.iso.datetime({ offset: true }).optional(),
});
export type DlqFilter = z.infer<typeof DlqFilter>;

export const DlqListQuery = DlqFilter.extend({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  /** Opaque: the `nextCursor` of the previous page. */
  cursor: z.string().max(200).optional(),
});
export type DlqListQuery = z.infer<typeof DlqListQuery>;

/** Operators' reasons are free text: bounded, one line; the pattern layer masks PHI shapes before storage. */
const Reason = z
  .string()
  .trim()
  .min(3)
  .max(500)
  .regex(/^[^\n\r]*$/, 'one line');
const TicketRef = z.string().regex(/^[A-Za-z0-9._#/-]{1,64}$/);

export const RequeueRequest = z.strictObject({ reason: Reason, ticket: TicketRef.optional() });
export type RequeueRequest = z.infer<typeof RequeueRequest>;
export const DiscardRequest = z.strictObject({ reason: Reason });
export type DiscardRequest = z.infer<typeof DiscardRequest>;

/** Bulk requeue: by filter, never more than `limit` runs; `dryRun` only counts. */
export const BulkRequeueRequest = z.strictObject({
  filter: DlqFilter.default({}),
  reason: Reason,
  ticket: TicketRef.optional(),
  limit: z.number().int().min(1).max(500).default(100),
  dryRun: z.boolean().default(false),
});
export type BulkRequeueRequest = z.infer<typeof BulkRequeueRequest>;

export const DlqEntry = z.object({
  runId: z.string(),
  idempotencyKey: z.string(),
  bot: z.string(),
  version: z.string(),
  segment: z.string(),
  status: z.enum(RUN_STATUSES),
  error: ErrorBodySchema.nullable(),
  attempts: z.number(),
  requeues: z.number(),
  createdAt: z.string(),
  deadLetteredAt: z.string().nullable(),
});
export type DlqEntry = z.infer<typeof DlqEntry>;
export const DlqList = z.object({ entries: z.array(DlqEntry), nextCursor: z.string().nullable() });

export const DlqAttempt = z.object({
  attempt: z.number(),
  runnerId: z.string(),
  claimedAt: z.string(),
  finishedAt: z.string().nullable(),
  outcome: z.enum(['succeeded', 'failed']).nullable(),
  /** Redacted by the runner before it left the segment. */
  error: ErrorBodySchema.nullable(),
});
export const DlqDetail = DlqEntry.extend({
  attemptsHistory: z.array(DlqAttempt),
  /** The last masked screenshot (`GET /v1/runs/:id/screenshots/:n`), if one is still kept. */
  lastScreenshotId: z.number().nullable(),
  discardReason: z.string().nullable(),
});
export type DlqDetail = z.infer<typeof DlqDetail>;

export const RequeueResult = z.object({ runId: z.string(), status: z.literal('waiting'), idempotencyKey: z.string(), requeues: z.number() });
export const DiscardResult = z.object({ runId: z.string(), status: z.literal('discarded'), reason: z.string() });
export const BulkRequeueResult = z.object({
  dryRun: z.boolean(),
  /** Dead letters matching the filter (all of them, not only up to the cap). */
  matched: z.number(),
  requeued: z.array(z.string()),
  skipped: z.array(z.object({ runId: z.string(), code: z.string() })),
});
