import { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { ClaimRequest, LeaseRequest, OrderlyError, PackageDigest, RunId } from '@orderly/shared';
import { parseRequest } from '../http/errors';
import { PublisherKeys } from '../keys/publisher-keys';
import { Packages } from '../packages/packages';
import { Runs } from '../runs/runs';
import { Screenshots, ScreenshotUpload } from '../runs/screenshots';

/** Routes for runners only. A runner token is bound to one segment and sees only its runs. */
export function runnerRoutes(app: FastifyInstance, runs: Runs, packages: Packages, keys: PublisherKeys, screenshots: Screenshots): void {
  app.post('/v1/runner/runs/:id/claim', { config: { access: 'runner' } }, async (request) => {
    const { id } = parseRequest(z.object({ id: RunId }), request.params, 'path');
    const body = parseRequest(ClaimRequest, request.body);
    if (request.principal?.kind !== 'runner') throw new OrderlyError('ORDERLY_E_FORBIDDEN', 'runners only');
    return runs.claim(id, request.principal.segment, body.attempt);
  });

  app.post('/v1/runner/runs/:id/lease', { config: { access: 'runner' } }, async (request, reply) => {
    const { id } = parseRequest(z.object({ id: RunId }), request.params, 'path');
    const body = parseRequest(LeaseRequest, request.body);
    if (request.principal?.kind !== 'runner') throw new OrderlyError('ORDERLY_E_FORBIDDEN', 'runners only');
    await runs.recordLease(id, request.principal.segment, body.attempt, body.accessor);
    return reply.code(204).send();
  });

  app.post('/v1/runner/runs/:id/screenshots', { config: { access: 'runner' } }, async (request, reply) => {
    const { id } = parseRequest(z.object({ id: RunId }), request.params, 'path');
    const body = parseRequest(ScreenshotUpload, request.body);
    if (request.principal?.kind !== 'runner') throw new OrderlyError('ORDERLY_E_FORBIDDEN', 'runners only');
    return reply.code(201).send(await screenshots.store(id, request.principal.segment, body));
  });

  app.get('/v1/runner/packages/:digest', { config: { access: 'runner' } }, async (request) => {
    const { digest } = parseRequest(z.object({ digest: PackageDigest }), request.params, 'path');
    const pkg = await packages.byDigest(digest);
    const archive = pkg && (await packages.blob(digest));
    if (!pkg || !archive) throw new OrderlyError('ORDERLY_E_NOT_FOUND', `no package ${digest}`);
    const publisherPublicKeyPem = await keys.pemOf(pkg.view.publisherKeyId);
    return { archive: archive.toString('base64'), envelope: pkg.envelope, publisherKeyId: pkg.view.publisherKeyId, publisherPublicKeyPem };
  });
}
