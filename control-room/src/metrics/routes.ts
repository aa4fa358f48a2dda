import { FastifyInstance } from 'fastify';
import { ControlRoomMetrics } from './metrics';

/**
 * `GET /metrics`: the Prometheus exposition. It needs `metrics.read` (a service account token for the
 * scraper, held by operators and admins) rather than a loopback-only port: the numbers carry no PHI,
 * but segment names and error codes describe the deployment and stay behind authentication.
 */
export function metricsRoutes(app: FastifyInstance, metrics: ControlRoomMetrics): void {
  app.get('/metrics', { config: { permission: 'metrics.read' } }, async (_request, reply) => {
    const { contentType, body } = await metrics.scrape();
    return reply.type(contentType).send(body);
  });
}
