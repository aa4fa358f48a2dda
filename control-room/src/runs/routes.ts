import { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { CreateRunRequest, CreateRunsBatchRequest, IdempotencyKey, OrderlyError, RUN_STATUSES, RunId, SegmentName } from '@orderly/shared';
import { canIn, segmentsWith } from '../access/bindings';
import { can } from '../access/permissions';
import { assertReadsPhi, assertSeesRun, auditPhiRead, readableSegments, readReason } from '../access/phi';
import type { AuditLog } from '../audit/audit';
import { parseRequest } from '../http/errors';
import { Runs } from './runs';
import { Screenshots } from './screenshots';

const ListQuery = z.strictObject({ status: z.enum(RUN_STATUSES).optional(), limit: z.coerce.number().int().min(1).max(500).default(50) });
const IdParams = z.object({ id: z.string().max(100) });

/** Idempotency keys get their own code: clients that generate them need to know what went wrong. */
function checkIdempotencyKeys(body: unknown): void {
  const runs = (body as { runs?: unknown[] } | undefined)?.runs ?? [body];
  for (const run of runs) {
    const key = (run as { idempotencyKey?: unknown } | undefined)?.idempotencyKey;
    if (key !== undefined && !IdempotencyKey.safeParse(key).success) {
      throw new OrderlyError('ORDERLY_E_IDEMPOTENCY_KEY_INVALID', 'idempotency keys are 1-200 characters of A-Z a-z 0-9 . _ - (not only digits)');
    }
  }
}

/**
 * Developers (runs.create.dev) start runs outside production only; operators (runs.create) anywhere;
 * both only in the segments their role bindings name (`operator@dev`). A run without a segment goes
 * to its package's first segment, which may be a production one (or one outside the caller's
 * bindings), so such callers must name the segment.
 */
export function checkSegments(request: FastifyRequest, segments: readonly (SegmentName | undefined)[], prodSegments: readonly SegmentName[]): void {
  const anywhere = segmentsWith(request.principal, 'runs.create');
  if (anywhere === 'all' && can(request.principal, 'runs.create')) return;
  const devOnly = segmentsWith(request.principal, 'runs.create.dev');
  if (devOnly === 'all' && prodSegments.length === 0) return;
  for (const segment of segments) {
    const allowed =
      segment !== undefined &&
      (canIn(request.principal, 'runs.create', segment) || (canIn(request.principal, 'runs.create.dev', segment) && !prodSegments.includes(segment)));
    if (!allowed) {
      throw new OrderlyError(
        'ORDERLY_E_FORBIDDEN',
        'runs in production segments need the runs.create permission (operators), and every run a binding for its segment; name a segment you may start runs in',
        { permission: 'runs.create', segment: segment ?? null },
      );
    }
  }
}

/**
 * Run routes. Listing and reading a run's state need `runs.read` in its segment and carry no PHI;
 * its input, result, logs and screenshots need `runs.read_phi` there, a reason, and each read is
 * audited (`run.read_phi`) before the answer leaves.
 */
export function runRoutes(app: FastifyInstance, runs: Runs, screenshots: Screenshots, prodSegments: readonly SegmentName[], audit: AuditLog): void {
  app.post('/v1/runs', { config: { permission: 'runs.create.dev' } }, async (request, reply) => {
    checkIdempotencyKeys(request.body);
    const body = parseRequest(CreateRunRequest, request.body);
    checkSegments(request, [body.segment], prodSegments);
    const header = request.headers['idempotency-key'];
    if (header !== undefined) {
      checkIdempotencyKeys({ idempotencyKey: header });
      const key = header as IdempotencyKey;
      if (body.idempotencyKey !== undefined && body.idempotencyKey !== key) {
        throw new OrderlyError('ORDERLY_E_BAD_REQUEST', 'Idempotency-Key header and body disagree');
      }
      body.idempotencyKey = key;
    }
    const [outcome] = await runs.create([body]);
    return reply.code(outcome!.created ? 201 : 200).send(outcome!.run);
  });
  /** Up to 1,000 runs in one request: one transaction, one queue round trip per segment. */
  app.post('/v1/runs/batch', { config: { permission: 'runs.create.dev' } }, async (request, reply) => {
    checkIdempotencyKeys(request.body);
    const body = parseRequest(CreateRunsBatchRequest, request.body);
    checkSegments(
      request,
      body.runs.map((r) => r.segment),
      prodSegments,
    );
    const outcomes = await runs.create(body.runs);
    return reply.code(201).send({ runs: outcomes.map((o) => ({ ...o.run, created: o.created })) });
  });
  /** After a Transit key rotation: move stored data keys to the newest version (then raise min_decryption_version). */
  app.post('/v1/admin/rewrap', { config: { permission: 'signing.manage' } }, async () => ({ rewrapped: await runs.rewrapAll() }));
  app.get('/v1/runs', { config: { permission: 'runs.read' } }, async (request) => {
    const query = parseRequest(ListQuery, request.query, 'query');
    const segments = readableSegments(request);
    return { runs: await runs.list({ ...query, ...(segments === 'all' ? {} : { segments }) }) };
  });
  app.get('/v1/runs/:id', { config: { permission: 'runs.read' } }, async (request) => {
    const view = await runs.get(parseRequest(IdParams, request.params, 'path').id);
    assertSeesRun(request, view);
    // The state view never carries the result: that is a PHI read (GET /v1/runs/:id/result).
    const { result: _result, ...state } = view;
    return state;
  });
  /** The run's input and result: a PHI read. */
  app.get('/v1/runs/:id/result', { config: { permission: 'runs.read_phi.dev' } }, async (request) => {
    const reason = readReason(request);
    const view = await runs.get(parseRequest(IdParams, request.params, 'path').id);
    assertReadsPhi(request, view, prodSegments);
    const phi = await runs.readPhi(view.id);
    await auditPhiRead(audit, request, view, 'result', reason);
    return { runId: view.id, status: view.status, input: phi.input, result: phi.result };
  });
  app.get('/v1/runs/:id/screenshots', { config: { permission: 'runs.read' } }, async (request) => {
    const { id } = parseRequest(z.object({ id: RunId }), request.params, 'path');
    assertSeesRun(request, await runs.get(id));
    return { screenshots: await screenshots.list(id) };
  });
  app.get('/v1/runs/:id/screenshots/:shot', { config: { permission: 'runs.read_phi.dev' } }, async (request, reply) => {
    const reason = readReason(request);
    const { id, shot } = parseRequest(z.object({ id: RunId, shot: z.coerce.number().int().positive() }), request.params, 'path');
    const view = await runs.get(id);
    assertReadsPhi(request, view, prodSegments);
    const png = await screenshots.png(id, shot);
    await auditPhiRead(audit, request, view, 'screenshot', reason, { shot });
    return reply.type('image/png').header('cache-control', 'no-store').send(png);
  });
  app.get('/v1/runs/:id/logs', { config: { permission: 'runs.read_phi.dev' } }, async (request) => {
    const reason = readReason(request);
    const view = await runs.get(parseRequest(IdParams, request.params, 'path').id);
    assertReadsPhi(request, view, prodSegments);
    const lines = await runs.logs(view.id);
    await auditPhiRead(audit, request, view, 'logs', reason);
    return { lines };
  });
}
