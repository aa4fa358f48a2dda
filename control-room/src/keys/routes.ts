import { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { KeyId, KeyOwnerRef, OrderlyError, RegisterKeyRequest } from '@orderly/shared';
import { parseRequest } from '../http/errors';
import { KeyHolder, PublisherKeys } from './publisher-keys';

/** Finds the person or service account named as a key's holder (the ownership registry). */
export type HolderResolver = (ref: KeyOwnerRef) => Promise<KeyHolder>;

export function keyRoutes(app: FastifyInstance, keys: PublisherKeys, resolveHolder: HolderResolver): void {
  app.post('/v1/keys', { config: { permission: 'keys.manage', stepUp: true } }, async (request, reply) => {
    const body = parseRequest(RegisterKeyRequest, request.body);
    // Every key answers to a person (directly, or through the service account's owner): a key
    // bound to nobody would publish names no team owns and escape separation of duties.
    if (!body.owner) {
      throw new OrderlyError('ORDERLY_E_KEY_HOLDER_REQUIRED', 'a publisher key needs a holder: owner { kind: "user" | "service", name }', {
        field: 'owner',
      });
    }
    const { key, created } = await keys.register(body.name, body.publicKeyPem, await resolveHolder(body.owner));
    return reply.code(created ? 201 : 200).send(key);
  });
  app.get('/v1/keys', { config: { permission: 'keys.read' } }, async () => ({ keys: await keys.list() }));
  // A key change: a fresh second factor, like registration. No body; the generic hook audits it.
  app.post('/v1/keys/:id/revoke', { config: { permission: 'keys.manage', stepUp: true } }, async (request) => {
    const { id } = parseRequest(z.object({ id: KeyId }), request.params, 'path');
    return keys.revoke(id, request.principal?.actor ?? 'unknown');
  });
}
