import { FastifyInstance } from 'fastify';
import { PublishRequest } from '@orderly/shared';
import { parseRequest } from '../http/errors';
import { Packages } from './packages';

export function packageRoutes(app: FastifyInstance, packages: Packages): void {
  app.post('/v1/packages', { config: { permission: 'packages.publish' } }, async (request, reply) => {
    const body = parseRequest(PublishRequest, request.body);
    const { pkg, created } = await packages.ingest(Buffer.from(body.archive, 'base64'), body.envelope);
    return reply.code(created ? 201 : 200).send(pkg.view);
  });
  app.get('/v1/packages', { config: { permission: 'packages.read' } }, async () => ({ packages: await packages.list() }));
}
