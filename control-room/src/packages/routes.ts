import { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { BotName, BotVersion, OrderlyError, PromoteRequest, PublishRequest } from '@orderly/shared';
import { Principal } from '../access/permissions';
import { parseRequest } from '../http/errors';
import { Packages, Publisher } from './packages';
import { Releases } from './releases';

const NameVersion = z.object({ name: BotName, version: BotVersion });

/** The caller as a publisher or approver: its stable id decides separation of duties. */
function asPerson(principal: Principal | undefined): Publisher {
  if (!principal) throw new OrderlyError('ORDERLY_E_UNAUTHENTICATED', 'a valid bearer token is required');
  return { id: principal.id, actor: principal.actor, kind: principal.kind };
}

export function packageRoutes(app: FastifyInstance, packages: Packages, releases: Releases): void {
  app.post('/v1/packages', { config: { permission: 'packages.publish' } }, async (request, reply) => {
    const body = parseRequest(PublishRequest, request.body);
    const { pkg, created } = await packages.ingest(
      Buffer.from(body.archive, 'base64'),
      body.envelope,
      asPerson(request.principal),
      body.team === undefined ? {} : { team: body.team },
    );
    return reply.code(created ? 201 : 200).send(pkg.view);
  });
  app.get('/v1/packages', { config: { permission: 'packages.read' } }, async () => ({ packages: await releases.list() }));
  app.get('/v1/packages/:name/:version', { config: { permission: 'packages.read' } }, async (request) => {
    const { name, version } = parseRequest(NameVersion, request.params, 'path');
    return releases.detail(name, version);
  });
  // What the version adds to the one in prod: the approver reads this before promoting.
  app.get('/v1/packages/:name/:version/permissions', { config: { permission: 'packages.read' } }, async (request) => {
    const { name, version } = parseRequest(NameVersion, request.params, 'path');
    return releases.permissions(name, version);
  });
  app.post('/v1/packages/:name/:version/promote', { config: { permission: 'packages.promote', stepUp: true } }, async (request, reply) => {
    const { name, version } = parseRequest(NameVersion, request.params, 'path');
    const body = parseRequest(PromoteRequest, request.body);
    return reply.code(201).send(await releases.promote(name, version, body, asPerson(request.principal)));
  });
}
