import { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { BotName } from '@orderly/shared';
import { RequestContext } from '../credentials/credentials';
import { parseRequest } from '../http/errors';
import { MemberRef, Ownership, TeamName } from './ownership';

const context = (request: FastifyRequest): RequestContext => ({ actor: request.principal?.actor ?? 'anonymous', sourceIp: request.ip, requestId: request.id });
const TeamParam = z.strictObject({ team: TeamName });
const MemberParams = z.strictObject({ team: TeamName, kind: z.enum(['user', 'service']), name: MemberRef.shape.name });

/**
 * Who may publish what: teams (the security team's registry, like publisher keys: `keys.manage`
 * with step-up to change, `keys.read` to read), bot name owners and their transfer, and the owner
 * of a service account (an identity change: `users.manage`, step-up).
 */
export function ownershipRoutes(app: FastifyInstance, ownership: Ownership): void {
  app.post('/v1/teams', { config: { permission: 'keys.manage', stepUp: true } }, async (request, reply) => {
    const body = parseRequest(z.strictObject({ name: TeamName }), request.body);
    return reply.code(201).send(await ownership.createTeam(context(request), body.name));
  });
  app.get('/v1/teams', { config: { permission: 'keys.read' } }, async () => ({ teams: await ownership.listTeams() }));
  app.post('/v1/teams/:team/members', { config: { permission: 'keys.manage', stepUp: true } }, async (request) => {
    const { team } = parseRequest(TeamParam, request.params, 'path');
    return ownership.addMember(context(request), team, parseRequest(MemberRef, request.body));
  });
  app.delete('/v1/teams/:team/members/:kind/:name', { config: { permission: 'keys.manage', stepUp: true } }, async (request) => {
    const { team, kind, name } = parseRequest(MemberParams, request.params, 'path');
    return ownership.removeMember(team, { kind, name });
  });
  app.get('/v1/bots/owners', { config: { permission: 'packages.read' } }, async () => ({ owners: await ownership.owners() }));
  app.post('/v1/bots/:name/transfer', { config: { permission: 'keys.manage', stepUp: true } }, async (request) => {
    const { name } = parseRequest(z.strictObject({ name: BotName }), request.params, 'path');
    const body = parseRequest(z.strictObject({ team: TeamName }), request.body);
    return ownership.transfer(context(request), name, body.team);
  });
  app.put('/v1/service-accounts/:id/owner', { config: { permission: 'users.manage', stepUp: true } }, async (request) => {
    const { id } = parseRequest(z.strictObject({ id: MemberRef.shape.name }), request.params, 'path');
    const body = parseRequest(z.strictObject({ user: MemberRef.shape.name }), request.body);
    return ownership.setServiceAccountOwner(context(request), id, body.user);
  });
}
