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
import { Ownership } from '../packages/ownership';
import { ownershipRoutes } from '../packages/ownership-routes';
import { runnerRoutes } from '../runner-api/routes';
import { Runs } from '../runs/runs';
import { runRoutes } from '../runs/routes';
import { Batches } from '../batches/batches';
import { batchControlRoutes, batchRoutes } from '../batches/routes';
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
import type { SsoLogin } from '../identity/sso/sso';
import { ssoRoutes } from '../identity/sso/routes';
import { AccessRequests } from '../access/requests';
import { accessRoutes } from '../access/routes';
import { sendError } from './errors';
import { checkReadiness } from './readiness';
import { requireRunnerCertificates } from './tls';
import { AlertOutbox, alertRoutes } from '../alerts';
import { DeadLetters } from '../dlq/dlq';
import { dlqRoutes } from '../dlq/routes';
import { RunCancellation, runCancelRoutes } from '../runs/cancel';
import type { RunQueues } from '../runs/queues';
import type { Schedules } from '../schedules/schedules';
import { scheduleRoutes } from '../schedules/routes';
import { consoleRoutes } from '../console/routes';
import { ControlRoomMetrics } from '../metrics/metrics';
import { metricsRoutes } from '../metrics/routes';
import { Compliance } from '../compliance/report';
import { complianceRoutes } from '../compliance/routes';
import { AccessReviews } from '../compliance/access-reviews';
import { accessReviewRoutes } from '../compliance/access-review-routes';

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
  /** Teams, bot name owners, service account owners (who may publish what). */
  ownership: Ownership;
  /** Serve HTTPS with these options (TLS 1.3 minimum, see `tls.ts`); unset: plain HTTP. */
  https?: import('node:tls').TlsOptions | undefined;
  /** mTLS: runner routes need a verified client certificate. */
  requireRunnerCertificates?: boolean;
  /** Dead letters, alert status and run cancel; their routes are registered when given. */
  deadLetters?: DeadLetters;
  alerts?: AlertOutbox;
  /** Production: each use of the bootstrap admin token (the break-glass identity) raises an alert. */
  breakGlassAlerts?: boolean;
  cancellation?: RunCancellation;
  /** The run queues: a batch's pause withdraws its queued jobs and resume queues them (with `cancellation`, the batch control routes). */
  queues?: RunQueues;
  /**
   * Users, sessions, API tokens, service accounts, runner identities. Required: it does the CSRF
   * and step-up checks, which a wiring mistake must not skip silently (issue 13 item 7).
   */
  identity: Identity;
  /** Every segment this control room serves (role bindings may name one). */
  segments?: readonly SegmentName[];
  /** Segments only `runs.create` may start runs in (developers hold `runs.create.dev`). */
  prodSegments?: readonly SegmentName[];
  /** Operators' schedules; their routes are registered when given. */
  schedules?: Schedules;
  /** Prometheus metrics at `/metrics` (permission `metrics.read`). */
  metrics?: ControlRoomMetrics;
  /** Compliance checks and evidence (`/v1/compliance`). */
  compliance?: Compliance;
  accessReviews?: AccessReviews;
  /** OpenID Connect single sign-on (`/v1/auth/sso/*`); without it those routes answer 404. */
  sso?: SsoLogin | undefined;
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
    if (principal?.kind === 'admin' && deps.breakGlassAlerts && deps.alerts)
      await deps.alerts.breakGlassUsed(`${request.method} ${request.routeOptions.url ?? '(unknown)'}`, new Date());
    if (permission === 'public') return;
    deps.identity.checkCsrf(request, principal);
    authorize(principal, permission);
    if (request.routeOptions.config.stepUp) await deps.identity.checkStepUp(request, principal);
  });
  if (deps.requireRunnerCertificates) requireRunnerCertificates(app);
  app.setErrorHandler((err, request, reply) => sendError(err, request, reply));
  app.setNotFoundHandler((request, reply) => sendError(new OrderlyError('ORDERLY_E_NOT_FOUND', 'no such route'), request, reply));
  registerAuditHook(app, { audit: deps.audit.log, hash: deps.audit.hash, log: deps.log });

  app.get('/healthz', { config: { permission: 'public' } }, async () => ({ status: 'ok' }));
  app.get('/readyz', { config: { permission: 'public' } }, async (_request, reply) => {
    const { ready, checks } = await checkReadiness({
      database: () => deps.db.query('SELECT 1'),
      // A client that is not connected would queue the ping until Redis is back: down at once.
      redis: () => (deps.redis.status === 'ready' ? deps.redis.ping() : Promise.reject(new Error(`redis ${deps.redis.status}`))),
    });
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', database: checks.database, redis: checks.redis });
  });
  app.get('/v1/control-room/public-keys', { config: { permission: 'public' } }, async (_request, reply) =>
    reply.type('application/x-pem-file').send(deps.publicKeysPem),
  );

  keyRoutes(app, deps.keys, (ref) => deps.ownership.resolveKeyHolder(ref));
  packageRoutes(app, deps.packages, deps.releases);
  ownershipRoutes(app, deps.ownership);
  runRoutes(app, deps.runs, deps.screenshots, deps.prodSegments ?? [], deps.audit.log);
  const batches = new Batches({ db: deps.db, runs: deps.runs, hash: deps.audit.hash, queues: deps.queues, cancellation: deps.cancellation });
  batchRoutes(app, batches, deps.prodSegments ?? [], deps.audit.log);
  if (deps.queues && deps.cancellation) batchControlRoutes(app, batches);
  runnerRoutes(app, deps.runs, deps.packages, deps.keys, deps.screenshots, deps.releases);
  credentialRoutes(app, deps.credentials);
  auditRoutes(app, deps.audit);
  if (deps.deadLetters) dlqRoutes(app, deps.deadLetters);
  if (deps.alerts) alertRoutes(app, deps.alerts);
  if (deps.cancellation) runCancelRoutes(app, deps.cancellation);
  // One AccessRequests for the API and the console: the console's identity actions are its methods.
  const access = new AccessRequests({
    db: deps.db,
    identity: deps.identity,
    audit: deps.audit.log,
    alerts: deps.alerts,
    segments: deps.segments ?? [],
    prodSegments: deps.prodSegments ?? [],
  });
  identityRoutes(app, deps.identity, access);
  accessRoutes(app, access, deps.db);
  ssoRoutes(app, deps.sso, deps.identity);
  if (deps.schedules) scheduleRoutes(app, deps.schedules);
  consoleRoutes(app, deps, { access });
  if (deps.metrics) metricsRoutes(app, deps.metrics);
  if (deps.compliance) complianceRoutes(app, deps.compliance);
  if (deps.accessReviews) accessReviewRoutes(app, deps.accessReviews);
  return app;
}
