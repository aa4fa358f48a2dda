import { Readable } from 'node:stream';
import { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { OrderlyError, SegmentName } from '@orderly/shared';
import { canIn } from '../access/bindings';
import { assertReadsPhi, assertSeesRun, auditPhiRead, readableSegments, readReason } from '../access/phi';
import type { AuditLog } from '../audit/audit';
import { parseRequest } from '../http/errors';
import { checkSegments } from '../runs/routes';
import { Batches } from './batches';
import { contentTypeOf, CreateBatchRequest, csvHeader, EXPORT_FORMATS, ExportFormat, exportLine, ExportRow } from '@orderly/shared';

const IdParams = z.object({ id: z.string().max(100) });
const ListQuery = z.strictObject({ limit: z.coerce.number().int().min(1).max(500).default(50) });
const NoBody = z.union([z.undefined(), z.strictObject({})]);
const ResultsQuery = z.strictObject({ format: z.enum(EXPORT_FORMATS).optional() });

/** A batch is seen like its runs: `runs.read` in its segment, else it answers like a missing one. */
async function visible(request: FastifyRequest, batches: Batches, id: string) {
  const batch = await batches.get(id);
  assertSeesRun(request, { id, segment: batch.segment });
  return batch;
}

/**
 * Work queues of items. Creating a batch needs what creating its runs needs (`runs.create`, or
 * `runs.create.dev` outside production, in the segment's bindings); reading its progress and
 * items' states `runs.read`; its items' inputs and results are a PHI read (`runs.read_phi`, a
 * reason, one `run.read_phi` audit event per run), as for a single run.
 */
export function batchRoutes(app: FastifyInstance, batches: Batches, prodSegments: readonly SegmentName[], audit: AuditLog): void {
  app.post('/v1/batches', { config: { permission: 'runs.create.dev' } }, async (request, reply) => {
    const body = parseRequest(CreateBatchRequest, request.body);
    checkSegments(request, [body.segment], prodSegments);
    const answer = await batches.create(body, request.principal?.actor ?? 'unknown');
    return reply.code(answer.created ? 201 : 200).send(answer);
  });
  app.get('/v1/batches', { config: { permission: 'runs.read' } }, async (request) => {
    const query = parseRequest(ListQuery, request.query, 'query');
    const segments = readableSegments(request);
    return { batches: await batches.list({ ...query, ...(segments === 'all' ? {} : { segments }) }) };
  });
  app.get('/v1/batches/:id', { config: { permission: 'runs.read' } }, async (request) => {
    const { id } = parseRequest(IdParams, request.params, 'path');
    await visible(request, batches, id);
    return batches.detail(id);
  });
  /** Every item's input and result: a PHI read of each run, audited before the answer leaves. */
  app.get('/v1/batches/:id/results', { config: { permission: 'runs.read_phi.dev' } }, async (request, reply) => {
    const reason = readReason(request);
    const { id } = parseRequest(IdParams, request.params, 'path');
    const { format } = parseRequest(ResultsQuery, request.query, 'query');
    const batch = await batches.get(id);
    assertReadsPhi(request, { id, segment: batch.segment }, prodSegments);
    if (format) {
      const pages = batches.exportPages(id, async (runIds) => {
        for (const runId of runIds) await auditPhiRead(audit, request, { id: runId, segment: batch.segment }, 'result', reason, { batch: id });
      });
      return reply
        .type(contentTypeOf(format))
        .header('content-disposition', `attachment; filename="batch-${id}.${format}"`)
        .send(Readable.from(exportText(format, pages)));
    }
    const items = await batches.results(id);
    for (const item of items) await auditPhiRead(audit, request, { id: item.runId, segment: batch.segment }, 'result', reason, { batch: id });
    return { batchId: id, items };
  });
  app.post('/v1/batches/:id/retry', { config: { permission: 'runs.create.dev' } }, async (request) => {
    parseRequest(NoBody, request.body);
    const { id } = parseRequest(IdParams, request.params, 'path');
    const batch = await visible(request, batches, id);
    checkSegments(request, [batch.segment as SegmentName], prodSegments);
    const runs = await batches.retryFailed(id);
    return { batchId: id, requeued: runs.length, runs };
  });
}

/**
 * The export's text, a page at a time. A failure after the first page cannot change the status
 * any more: the stream is cut, so the client sees a truncated file and an error, never a short
 * file that looks whole (the CLI checks the count of records against the batch).
 */
async function* exportText(format: ExportFormat, pages: AsyncGenerator<ExportRow[]>): AsyncGenerator<string> {
  if (format === 'csv') yield csvHeader();
  for await (const page of pages) yield page.map((row) => exportLine(format, row)).join('');
}

/**
 * Pause, resume and cancel (`runs.cancel`, operators, in the batch's segment): each an audit
 * event (`batch.pause`, `batch.resume`, `batch.cancel`) with the batch as target.
 */
export function batchControlRoutes(app: FastifyInstance, batches: Batches): void {
  const change = (action: 'pause' | 'resume' | 'cancel') =>
    app.post(`/v1/batches/:id/${action}`, { config: { permission: 'runs.cancel', audit: `batch.${action}` } }, async (request) => {
      parseRequest(NoBody, request.body);
      const { id } = parseRequest(IdParams, request.params, 'path');
      request.auditTarget = `batch:${id}`;
      const batch = await batches.get(id);
      // Role bindings are per segment: a batch outside the caller's answers like a missing one.
      if (!canIn(request.principal, 'runs.cancel', batch.segment)) throw new OrderlyError('ORDERLY_E_NOT_FOUND', `no batch ${id}`);
      const actor = request.principal?.actor ?? 'unknown';
      const answer =
        action === 'pause' ? await batches.pause(id, actor) : action === 'resume' ? await batches.resume(id, actor) : await batches.cancel(id, actor);
      request.auditDetails = { previous: answer.previous, runs: answer.runs };
      return answer;
    });
  change('pause');
  change('resume');
  change('cancel');
}
