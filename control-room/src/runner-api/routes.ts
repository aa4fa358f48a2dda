import { FastifyInstance } from 'fastify';
import { z } from 'zod';
import {
  ClaimRequest,
  isOrderlyError,
  LeaseRequest,
  OrderlyError,
  PackageDigest,
  RenewRequest,
  RunId,
  StepBeginRequest,
  StepCompleteRequest,
} from '@orderly/shared';
import { runnerSegment } from '../http/auth';
import { parseRequest } from '../http/errors';
import { PublisherKeys } from '../keys/publisher-keys';
import { Packages } from '../packages/packages';
import { Releases } from '../packages/releases';
import { Runs } from '../runs/runs';
import { Screenshots, ScreenshotUpload } from '../runs/screenshots';

/** Routes for runners only. A runner token is bound to one segment and sees only its runs. */
export function runnerRoutes(app: FastifyInstance, runs: Runs, packages: Packages, keys: PublisherKeys, screenshots: Screenshots, releases: Releases): void {
  app.post('/v1/runner/runs/:id/claim', { config: { permission: 'runner.api' } }, async (request) => {
    const { id } = parseRequest(z.object({ id: RunId }), request.params, 'path');
    const body = parseRequest(ClaimRequest, request.body);
    try {
      return await runs.claim(id, runnerSegment(request), body.runnerId, body.leaseMs);
    } catch (err) {
      // A refused duplicate claim is audited by the request hook: with the live attempt and who asked.
      if (isOrderlyError(err) && err.code === 'ORDERLY_E_RUN_ALREADY_ACTIVE') {
        request.auditTarget = id;
        request.auditDetails = { runnerId: body.runnerId, activeAttempt: Number(err.details.activeAttempt) };
      }
      throw err;
    }
  });

  // The attempt's lease, renewed by its runner while the run is active (fencing: see runs/fencing.ts).
  app.post('/v1/runner/runs/:id/renew', { config: { permission: 'runner.api' } }, async (request) => {
    const { id } = parseRequest(z.object({ id: RunId }), request.params, 'path');
    const body = parseRequest(RenewRequest, request.body);
    return runs.renew(id, runnerSegment(request), body.attempt, body.fence);
  });

  // Step checkpoints: the run's own segment, an active run, its current attempt only.
  app.post('/v1/runner/runs/:id/steps/begin', { config: { permission: 'runner.api' } }, async (request) => {
    const { id } = parseRequest(z.object({ id: RunId }), request.params, 'path');
    const body = parseRequest(StepBeginRequest, request.body);
    return runs.steps.begin(id, runnerSegment(request), body.attempt, body.fence, body.name, body.rerun);
  });

  app.post('/v1/runner/runs/:id/steps/complete', { config: { permission: 'runner.api' } }, async (request, reply) => {
    const { id } = parseRequest(z.object({ id: RunId }), request.params, 'path');
    const body = parseRequest(StepCompleteRequest, request.body);
    await runs.steps.complete(id, runnerSegment(request), body.attempt, body.fence, body.name, body.result);
    return reply.code(204).send();
  });

  app.post('/v1/runner/runs/:id/lease', { config: { permission: 'runner.api' } }, async (request, reply) => {
    const { id } = parseRequest(z.object({ id: RunId }), request.params, 'path');
    const body = parseRequest(LeaseRequest, request.body);
    await runs.recordLease(id, runnerSegment(request), body.attempt, body.fence, body.accessor);
    return reply.code(204).send();
  });

  app.post('/v1/runner/runs/:id/screenshots', { config: { permission: 'runner.api' } }, async (request, reply) => {
    const { id } = parseRequest(z.object({ id: RunId }), request.params, 'path');
    const body = parseRequest(ScreenshotUpload, request.body);
    return reply.code(201).send(await screenshots.store(id, runnerSegment(request), body));
  });

  app.get('/v1/runner/packages/:digest', { config: { permission: 'runner.api' } }, async (request) => {
    const { digest } = parseRequest(z.object({ digest: PackageDigest }), request.params, 'path');
    const pkg = await packages.byDigest(digest);
    // A runner of segment S fetches only packages whose manifest allows S: the same answer as an
    // unknown digest, so a runner cannot even learn what other segments run.
    if (pkg && !(pkg.manifest.segments as readonly string[]).includes(runnerSegment(request)))
      throw new OrderlyError('ORDERLY_E_NOT_FOUND', `no package ${digest}`);
    const archive = pkg && (await packages.blob(digest));
    if (!pkg || !archive) throw new OrderlyError('ORDERLY_E_NOT_FOUND', `no package ${digest}`);
    const publisherPublicKeyPem = await keys.pemOf(pkg.view.publisherKeyId);
    // The release state comes with the bytes, so the first run needs one round trip.
    const release = await releases.forRunner(digest);
    return { ...release, archive: archive.toString('base64'), envelope: pkg.envelope, publisherKeyId: pkg.view.publisherKeyId, publisherPublicKeyPem };
  });

  // Asked on every run of a cached package: a revocation or an expiry takes effect at once.
  app.get('/v1/runner/packages/:digest/release', { config: { permission: 'runner.api' } }, async (request) => {
    const { digest } = parseRequest(z.object({ digest: PackageDigest }), request.params, 'path');
    const pkg = await packages.byDigest(digest);
    if (!pkg || !(pkg.manifest.segments as readonly string[]).includes(runnerSegment(request)))
      throw new OrderlyError('ORDERLY_E_NOT_FOUND', `no package ${digest}`);
    return releases.forRunner(digest);
  });
}
