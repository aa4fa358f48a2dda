import { FastifyInstance } from 'fastify';
import { AlertOutbox } from './outbox';

/** Alert delivery status: pending and failing counts, so an undeliverable alert is never invisible. */
export function alertRoutes(app: FastifyInstance, outbox: AlertOutbox): void {
  app.get('/v1/alerts', { config: { permission: 'dlq.read' } }, async () => outbox.stats());
}
