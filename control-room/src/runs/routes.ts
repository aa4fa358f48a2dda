import { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { CreateRunRequest, CreateRunsBatchRequest, IdempotencyKey, RUN_STATUSES } from '@orderly/shared';
import { parseRequest } from '../http/errors';
import { Runs } from './runs';

const ListQuery = z.object({ status: z.enum(RUN_STATUSES).optional(), limit: z.coerce.number().int().min(1).max(500).default(50) });
const IdParams = z.object({ id: z.string().max(100) });

export function runRoutes(app: FastifyInstance, runs: Runs): void {
  app.post('/v1/runs', { config: { access: 'admin' } }, async (request, reply) => {
    const body = parseRequest(CreateRunRequest, request.body);
    const header = request.headers['idempotency-key'];
    if (header !== undefined) {
      const key = parseRequest(IdempotencyKey, header, 'Idempotency-Key header');
      if (body.idempotencyKey !== undefined && body.idempotencyKey !== key) {
        return reply.code(400).send({ error: { code: 'ORDERLY_E_BAD_REQUEST', message: 'Idempotency-Key header and body disagree', retryable: false, details: {} } });
      }
      body.idempotencyKey = key;
    }
    const [outcome] = await runs.create([body]);
    return reply.code(outcome!.created ? 201 : 200).send(outcome!.run);
  });
  /** Up to 1,000 runs in one request: one transaction, one queue round trip per segment. */
  app.post('/v1/runs/batch', { config: { access: 'admin' } }, async (request, reply) => {
    const body = parseRequest(CreateRunsBatchRequest, request.body);
    const outcomes = await runs.create(body.runs);
    return reply.code(201).send({ runs: outcomes.map((o) => ({ ...o.run, created: o.created })) });
  });
  app.get('/v1/runs', { config: { access: 'admin' } }, async (request) => {
    const query = parseRequest(ListQuery, request.query, 'query');
    return { runs: await runs.list(query) };
  });
  app.get('/v1/runs/:id', { config: { access: 'admin' } }, async (request) => runs.get(parseRequest(IdParams, request.params, 'path').id));
  app.get('/v1/runs/:id/logs', { config: { access: 'admin' } }, async (request) => ({ lines: await runs.logs(parseRequest(IdParams, request.params, 'path').id) }));
}
