import { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { parseRequest } from '../http/errors';
import { AccessReviews } from './access-reviews';

const StartRequest = z.strictObject({ dueInDays: z.number().int().min(1).max(90).default(14) });
const DecideRequest = z.strictObject({ decision: z.enum(['confirmed', 'revoked']) });
const Params = z.strictObject({ id: z.uuid() });
const ItemParams = z.strictObject({ id: z.uuid(), itemId: z.coerce.number().int().positive() });

/** Access review campaigns: the security team (`users.manage`) starts them and decides each item. */
export function accessReviewRoutes(app: FastifyInstance, reviews: AccessReviews): void {
  const actor = (request: { principal?: { actor: string } }) => request.principal?.actor ?? 'unknown';
  app.post('/v1/access-reviews', { config: { permission: 'users.manage' } }, async (request, reply) => {
    // No body means the defaults; any body (null included) must be the request object.
    const body = parseRequest(StartRequest, request.body === undefined ? {} : request.body);
    return reply.code(201).send(await reviews.start(actor(request), body.dueInDays));
  });
  app.get('/v1/access-reviews/:id', { config: { permission: 'users.manage' } }, async (request) =>
    reviews.get(parseRequest(Params, request.params, 'parameters').id),
  );
  app.post('/v1/access-reviews/:id/items/:itemId', { config: { permission: 'users.manage' } }, async (request) => {
    const params = parseRequest(ItemParams, request.params, 'parameters');
    return reviews.decide(params.id, params.itemId, parseRequest(DecideRequest, request.body).decision, actor(request));
  });
}
