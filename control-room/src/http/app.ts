import { randomUUID } from 'node:crypto';
import Fastify, { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { OrderlyError, SegmentName } from '@orderly/shared';
import type { Logger } from '@orderly/shared';
import { Credentials } from '../credentials/credentials';
import { credentialRoutes } from '../credentials/routes';
import { Db } from '../db/db';
import { PublisherKeys } from '../keys/publisher-keys';
import { keyRoutes } from '../keys/routes';
import { Packages } from '../packages/packages';
import { packageRoutes } from '../packages/routes';
import { Releases } from '../packages/releases';
import { runnerRoutes } from '../runner-api/routes';
import { Runs } from '../runs/runs';
import { runRoutes } from '../runs/routes';
import { Screenshots } from '../runs/screenshots';
import { AuditLog } from '../audit/audit';
import { auditRoutes } from '../audit/routes';
import { AuditHeads } from '../audit/heads';
import { KeyedHasher } from '../audit/keyed-hash';
import { registerAuditHook } from './audit-hook';
import { authenticateRequest, authorize, TokenStore } from './auth';
import { hardenedServerOptions, hardenRoutes } from './hardening';
import type { Identity } from '../identity/identity';
import { identityRoutes } from '../identity/routes';
import { sendError } from './errors';
import { requireRunnerCertificates } from './tls';
import { AlertOutbox, alertRoutes } from '../alerts';
import { DeadLetters } from '../dlq/dlq';
import { dlqRoutes } from '../dlq/routes';
import { RunCancellation, runCancelRoutes } from '../runs/cancel';
import type { Schedules } from '../schedules/schedules';
import { scheduleRoutes } from '../schedules/routes';

export interface AppDeps {
  db: Db;
  redis: Redis;
  keys: PublisherKeys;
  packages: Packages;
  runs: Runs;
  screenshots: Screenshots;
  /** Credential set/rotate/status; answers ORDERLY_E_VAULT_NOT_CONFIGURED without Vault. */
  credentials: Credentials;
  tokens: TokenStore;
  publicKeysPem: string;
  maxPackageBytes: number;
  log: Logger;
  /** The audit log, its signed heads and the release public key (PEM) that verifies them. */
  audit: { log: AuditLog; heads: AuditHeads; hash: KeyedHasher; releasePublicKeyPem: string };
  /** Promotion, release attestations and the release gate. */
  releases: Releases;
  /** Serve HTTPS with these options (TLS 1.3 minimum, see `tls.ts`); unset: plain HTTP. */
  https?: import('node:tls').TlsOptions | undefined;
  /** mTLS: runner routes need a verified client certificate. */
  requireRunnerCertificates?: boolean;
  /** Dead letters, alert status and run cancel; their routes are registered when given. */
  deadLetters?: DeadLetters;
  alerts?: AlertOutbox;
  cancellation?: RunCancellation;
  /** Users, sessions, API tokens, service accounts, runner identities; without it only the bootstrap tokens work. */
  identity?: Identity;
  /** Segments only `runs.create` may start runs in (developers hold `runs.create.dev`). */
  prodSegments?: readonly SegmentName[];
  /** Operators' schedules; their routes are registered when given. */
  schedules?: Schedules;
}

/** Builds the control room's HTTP app; connects nothing (the composition root does). */
export function buildApp(deps: AppDeps): FastifyInstance {
  const app = Fastify({
    ...({ https: deps.https ?? null } as object),
    loggerInstance: deps.log as FastifyBaseLogger,
    // Base64 packages are 4/3 of their size, plus the envelope.
    bodyLimit: Math.ceil(deps.maxPackageBytes * 1.4) + 64 * 1024,
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    return503OnClosing: true,
    ...hardenedServerOptions(deps.log),
  });
  hardenRoutes(app, { maxPackageBytes: deps.maxPackageBytes });

  app.addHook('onRequest', async (request) => {
    const permission = request.routeOptions.config.permission;
    if (permission === undefined) {
      // Unknown routes fall through to the 404 handler; known ones must declare a permission.
      if (request.routeOptions.url === undefined) return;
      throw new OrderlyError('ORDERLY_E_INTERNAL', 'route declares no permission');
    }
    // The principal is set before any refusal, so a denied request is recorded with who it was.
    const principal = await authenticateRequest(request, deps.tokens, deps.identity, permission === 'public');
    if (principal) request.principal = principal;
    if (permission === 'public') return;
    deps.identity?.checkCsrf(request, principal);
    authorize(principal, permission);
    if (request.routeOptions.config.stepUp) {
      if (deps.identity) await deps.identity.checkStepUp(request, principal);
      else if (principal?.kind !== 'admin') throw new OrderlyError('ORDERLY_E_STEP_UP_REQUIRED', 'this action needs a fresh second factor');
    }
  });
  if (deps.requireRunnerCertificates) requireRunnerCertificates(app);
  app.setErrorHandler((err, request, reply) => sendError(err, request, reply));
  app.setNotFoundHandler((request, reply) => sendError(new OrderlyError('ORDERLY_E_NOT_FOUND', 'no such route'), request, reply));
  registerAuditHook(app, { audit: deps.audit.log, hash: deps.audit.hash, log: deps.log });

  app.get('/healthz', { config: { permission: 'public' } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { config: { permission: 'public' } }, async (_request, reply) => {
    const checks = await Promise.all([
      deps.db.query('SELECT 1').then(() => 'ok', () => 'down'),
      deps.redis.ping().then(() => 'ok', () => 'down'),
    ]);
    const [database, redis] = checks;
    const ready = checks.every((c) => c === 'ok');
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', database, redis });
  });
  app.get('/v1/control-room/public-keys', { config: { permission: 'public' } }, async (_request, reply) => reply.type('application/x-pem-file').send(deps.publicKeysPem));

  keyRoutes(app, deps.keys);
  packageRoutes(app, deps.packages, deps.releases);
  runRoutes(app, deps.runs, deps.screenshots, deps.prodSegments ?? []);
  runnerRoutes(app, deps.runs, deps.packages, deps.keys, deps.screenshots, deps.releases);
  credentialRoutes(app, deps.credentials);
  auditRoutes(app, deps.audit);
  if (deps.deadLetters) dlqRoutes(app, deps.deadLetters);
  if (deps.alerts) alertRoutes(app, deps.alerts);
  if (deps.cancellation) runCancelRoutes(app, deps.cancellation);
  if (deps.identity) identityRoutes(app, deps.identity);
  if (deps.schedules) scheduleRoutes(app, deps.schedules);
  return app;
}
