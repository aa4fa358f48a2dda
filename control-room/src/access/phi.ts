import { FastifyRequest } from 'fastify';
import { createRedactor, OrderlyError, SegmentName } from '@orderly/shared';
import type { AuditLog } from '../audit/audit';
import type { Db } from '../db/db';
import { canIn, segmentsWith } from './bindings';

/** The header a reader of PHI names their reason in (the CLI's `--reason`). */
export const REASON_HEADER = 'x-orderly-reason';

/** What of a run a PHI read returns: the review lists reads by it. */
export type PhiPart = 'result' | 'logs' | 'screenshot';

// Reasons are free text typed by people: masked by the pattern layer before they reach the audit log.
const reasons = createRedactor();

/** The request's reason, masked; ORDERLY_E_REASON_REQUIRED when missing or malformed. */
export function readReason(request: FastifyRequest): string {
  const header = request.headers[REASON_HEADER];
  return checkReason(typeof header === 'string' ? header : '');
}

/** A reason given some other way (the console's reveal form): the same rule and masking as the header. */
export function checkReason(given: string): string {
  const text = given.trim();
  if (text.length < 3 || text.length > 200 || [...text].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f)) {
    throw new OrderlyError(
      'ORDERLY_E_REASON_REQUIRED',
      `reading a run's input, result, logs or screenshots needs a reason (3-200 characters) in the X-Orderly-Reason header (CLI: --reason)`,
    );
  }
  return reasons.redact(text);
}

/**
 * A run the caller may see at all: `runs.read` in its segment. Otherwise it answers like a
 * missing run, so an operator of `dev` learns nothing of `prod`, not even that a run exists.
 */
export function assertSeesRun(request: FastifyRequest, run: { id: string; segment: string }): void {
  if (!canIn(request.principal, 'runs.read', run.segment)) throw new OrderlyError('ORDERLY_E_NOT_FOUND', `no run ${run.id}`);
}

/** Segments whose runs the caller may list; 'all' needs no filter. */
export const readableSegments = (request: FastifyRequest): 'all' | readonly string[] => {
  const segments = segmentsWith(request.principal, 'runs.read');
  return segments === 'all' ? 'all' : [...segments];
};

/**
 * The PHI gate of one run: `runs.read_phi` in its segment, or `runs.read_phi.dev` (developers)
 * when the segment is not a production one. The caller must see the run first.
 */
export function assertReadsPhi(request: FastifyRequest, run: { id: string; segment: string }, prodSegments: readonly SegmentName[]): void {
  assertSeesRun(request, run);
  const principal = request.principal;
  if (canIn(principal, 'runs.read_phi', run.segment)) return;
  if (canIn(principal, 'runs.read_phi.dev', run.segment) && !prodSegments.includes(run.segment as SegmentName)) return;
  throw new OrderlyError('ORDERLY_E_FORBIDDEN', `reading this run's PHI needs the runs.read_phi permission in segment ${run.segment}`, {
    permission: 'runs.read_phi',
    segment: run.segment,
  });
}

/** Records one PHI read: who, which run and part, and why. Written before the answer leaves. */
export async function auditPhiRead(
  audit: AuditLog,
  request: FastifyRequest,
  run: { id: string; segment: string },
  part: PhiPart,
  reason: string,
  extra: Record<string, string | number> = {},
): Promise<void> {
  await audit.append({
    actor: request.principal?.actor ?? 'anonymous',
    action: 'run.read_phi',
    target: `run:${run.id}`,
    outcome: 'success',
    sourceIp: request.ip,
    requestId: request.id,
    details: { part, segment: run.segment, reason, ...extra },
  });
}

export interface PhiReadView {
  seq: number;
  at: string;
  actor: string;
  runId: string;
  segment: string | null;
  part: string | null;
  reason: string | null;
  requestId: string | null;
}

/** The review of PHI reads (`GET /v1/access/phi-reads`): newest first, filtered by time, actor or run. */
export async function listPhiReads(
  db: Db,
  filter: { since?: string | undefined; until?: string | undefined; actor?: string | undefined; runId?: string | undefined; limit: number },
): Promise<PhiReadView[]> {
  const rows = await db.query<{ seq: string; at: Date; actor: string; target: string; request_id: string | null; details: Record<string, unknown> }>(
    `SELECT seq, at, actor, target, request_id, details FROM audit_events
     WHERE action = 'run.read_phi' AND ($1::timestamptz IS NULL OR at >= $1) AND ($2::timestamptz IS NULL OR at < $2)
       AND ($3::text IS NULL OR actor = $3) AND ($4::text IS NULL OR target = 'run:' || $4)
     ORDER BY seq DESC LIMIT $5`,
    [filter.since ?? null, filter.until ?? null, filter.actor ?? null, filter.runId ?? null, filter.limit],
  );
  const text = (v: unknown) => (typeof v === 'string' ? v : null);
  return rows.map((r) => ({
    seq: Number(r.seq),
    at: r.at.toISOString(),
    actor: r.actor,
    runId: r.target.replace(/^run:/, ''),
    segment: text(r.details.segment),
    part: text(r.details.part),
    reason: text(r.details.reason),
    requestId: r.request_id,
  }));
}
