import { z } from 'zod';
import { AUDIT_OUTCOMES, Scalar } from './audit';
import { AuditHead } from './heads';

/** Wire shapes of the audit API: the routes parse queries with them, the CLI parses responses. */

const Seq = z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const Instant = z.iso.datetime({ offset: true }).transform((s) => new Date(s));

export const AuditEventsQuery = z.strictObject({
  since: Instant.optional(),
  until: Instant.optional(),
  afterSeq: Seq.default(0),
  limit: z.coerce.number().int().min(1).max(5000).default(1000),
});

export const AuditHeadsQuery = z.strictObject({
  afterSeq: Seq.default(0),
  limit: z.coerce.number().int().min(1).max(5000).default(1000),
});

export const AuditRecordView = z.strictObject({
  seq: z.number().int(),
  at: z.string(),
  actor: z.string(),
  action: z.string(),
  target: z.string(),
  outcome: z.enum(AUDIT_OUTCOMES),
  sourceIp: z.string().nullable(),
  requestId: z.string().nullable(),
  details: z.record(z.string(), Scalar),
  prevHash: z.string(),
  hash: z.string(),
});

/** A page of events; `nextAfterSeq` is set when more may follow. */
export const AuditEventsPage = z.object({ events: z.array(AuditRecordView), nextAfterSeq: z.number().int().nullable() });
export const AuditHeadsPage = z.object({ heads: z.array(AuditHead), nextAfterSeq: z.number().int().nullable() });
