import { mkdirSync } from 'node:fs';
import { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { KeyObject } from 'node:crypto';
import { boundOfflineQueue, createLogger, localSigner, OrderlyError, publicKeyPem, Signer } from '@orderly/shared';
import type { VaultClient } from '@orderly/shared/vault';
import type { Logger } from '@orderly/shared';
import { startAlerts } from './alerts';
import { AuditLog } from './audit/audit';
import { AuditHeads } from './audit/heads';
import { keyedHasher, runJobIdHasher } from './audit/keyed-hash';
import { RunnerEvents } from './audit/runner-events';
import { ControlRoomConfig } from './config';
import { noVaultBroker, vaultCredentialBroker } from './credentials/broker';
import { Credentials } from './credentials/credentials';
import { vaultClient } from './credentials/vault';
import { openDb } from './db/db';
import { migrate } from './db/migrations';
import { startLeadership } from './db/leadership';
import { LocalSignInPolicy } from './identity/break-glass';
import { checkKeyFingerprints } from './keys/key-fingerprints';
import { buildApp } from './http/app';
import { loadOrCreateSecrets, publishPublicKeys } from './keys/secrets';
import { Identity } from './identity/identity';
import { readClientSecret, SsoLogin } from './identity/sso/sso';
import { transitSigner } from './keys/transit-signer';
import { PublisherKeys } from './keys/publisher-keys';
import { Ownership } from './packages/ownership';
import { Packages } from './packages/packages';
import { DeadLetters } from './dlq/dlq';
import { createReportConsumer } from './reports/consumer';
import { DeadLettering } from './dlq/dead-letter';
import { RUNNER_KEYS_TTL_MS, RunnerKeys } from './reports/runner-keys';
import { RunCancellation } from './runs/cancel';
import { AtRestCipher, localAtRestCipher, transitAtRestCipher } from './keys/at-rest';
import { RunQueues } from './runs/queues';
import { Screenshots } from './runs/screenshots';
import { Runs } from './runs/runs';
import { publishReleaseKey, ReleaseAuthority } from './keys/release';
import { Releases } from './packages/releases';
import { httpsOptions, warnIfPlainHttp } from './http/tls';
import { Schedules, startSchedules } from './schedules';
import { ControlRoomMetrics } from './metrics/metrics';
import { Retention } from './compliance/retention';
import { Compliance } from './compliance/report';
import { complianceSettings } from './compliance/settings';
import { AccessReviews } from './compliance/access-reviews';
import { scheduleCompliance } from './compliance/daily';

export interface RunningControlRoom {
  app: FastifyInstance;
  /** Base URL the server listens on. */
  url: string;
  runs: Runs;
  publicKeysPem: string;
  close(): Promise<void>;
  /** Promotion and the release gate (tests promote as a principal other than the publisher). */
  releases: Releases;
  /** Schedules (tests fire ticks by hand to check idempotency). */
  schedules: Schedules;
}

/** PHI at rest: Vault Transit envelope encryption when configured, else the local data key. */
async function atRestCipher(config: ControlRoomConfig, vault: VaultClient | undefined, dataKey: Buffer, dataKeyId: string): Promise<AtRestCipher> {
  if (!config.transitKey) return localAtRestCipher(dataKey, dataKeyId);
  if (!vault) throw new OrderlyError('ORDERLY_E_VAULT_NOT_CONFIGURED', 'ORDERLY_TRANSIT_KEY needs VAULT_ADDR');
  await vault.transitCreateKey(config.transitKey); // a no-op when the key exists
  // The local key still keys the idempotency MACs: they must stay stable across Transit rotations.
  return transitAtRestCipher({ vault, keyName: config.transitKey, macKey: dataKey });
}

/** Job envelopes are signed in Vault Transit when configured, else with the local key. */
async function jobSigner(config: ControlRoomConfig, vault: VaultClient | undefined, localKey: KeyObject): Promise<Signer> {
  if (!config.signingTransitKey) return localSigner(localKey);
  if (!vault) throw new OrderlyError('ORDERLY_E_VAULT_NOT_CONFIGURED', 'ORDERLY_SIGNING_TRANSIT_KEY needs VAULT_ADDR');
  return transitSigner(vault, config.signingTransitKey);
}

/** The composition root: load secrets, connect, migrate, wire, listen. */
export async function startControlRoom(
  config: ControlRoomConfig,
  log: Logger = createLogger({ level: config.logLevel, name: 'control-room' }),
): Promise<RunningControlRoom> {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const secrets = loadOrCreateSecrets(config.secretsDir, config.segments, { bootstrapRunners: !config.production });
  const db = await openDb({ databaseUrl: config.databaseUrl, pgliteDir: config.pgliteDir });
  const cleanups: (() => Promise<unknown>)[] = [() => db.close()];
  const close = async () => {
    // Reverse order of creation; every step runs even if an earlier one fails.
    for (const cleanup of cleanups.splice(0).reverse())
      await cleanup().catch((err: Error) => log.warn({ err: { message: err.message } }, 'cleanup step failed'));
  };
  try {
    await migrate(db);
    // Several replicas on one PostgreSQL: the once-only background tasks run on the leader alone
    // (a session advisory lock; db/leadership.ts).
    const leadership = await startLeadership({ db, databaseUrl: config.databaseUrl, log, pollMs: config.leaderPollSeconds * 1000 });
    cleanups.push(() => leadership.close());
    // BullMQ workers need maxRetriesPerRequest: null; the same connection serves queues.
    // Its offline queue is bounded (ORDERLY_E_REDIS_OFFLINE_QUEUE_FULL past 1000 waiting commands):
    // a long outage must not pile up every request's commands in memory.
    const redis = boundOfflineQueue(new Redis(config.redisUrl, { maxRetriesPerRequest: null, lazyConnect: false }));
    redis.on('error', () => undefined); // reconnects by itself; readiness reports it
    cleanups.push(async () => redis.quit().catch(() => redis.disconnect()));
    const queues = new RunQueues(redis, config.queuePrefix, runJobIdHasher(secrets.dataKey));
    cleanups.push(() => queues.close());
    const keys = new PublisherKeys(db);
    const vault = config.vault ? vaultClient(config.vault) : undefined;
    const credentials = config.vault && vault ? vaultCredentialBroker({ vault, ...config.vault }) : noVaultBroker;
    const audit = new AuditLog(db);
    const auditHash = keyedHasher(secrets.dataKey);
    const runnerEvents = new RunnerEvents(audit, auditHash, log);
    const auditHeads = new AuditHeads(db, audit, secrets.releaseKey);
    const credentialStore = new Credentials({ db, audit, vault, defaultMaxAgeDays: config.credentialMaxAgeDays });
    const ownership = new Ownership(db, audit);
    const packages = new Packages(
      db,
      keys,
      { maxArchiveBytes: config.maxPackageBytes, segments: config.segments, prodSegments: config.prodSegments },
      credentials,
      ownership,
    );
    const cipher = await atRestCipher(config, vault, secrets.dataKey, secrets.dataKeyId);
    const signer = await jobSigner(config, vault, secrets.signingKey);
    // A replica whose keys differ from the ones the database was initialised with stops here
    // (ORDERLY_E_KEYS_MISMATCH) rather than failing runs, reports and signatures later.
    await checkKeyFingerprints(db, {
      dataKeyId: secrets.dataKeyId,
      transitKey: config.transitKey,
      signingTransitKey: config.signingTransitKey,
      signerPublicKey: signer.publicKey,
      sealingKey: secrets.sealingKey,
      releaseKey: secrets.releaseKey,
    });
    // Safe on every replica at once: the sender claims outbox rows (FOR UPDATE SKIP LOCKED) before
    // sending; the queue-age check dedupes on a per-window key; pruning deletes by age.
    const alerts = startAlerts({ db, audit, log, segments: config.segments, config: config.alerts });
    cleanups.push(() => alerts.close());
    const releases = new Releases(db, packages, keys, new ReleaseAuthority(secrets.releaseKey), config.prodSegments);
    const publicKeysPem = publishReleaseKey(config.secretsDir, publishPublicKeys(config.secretsDir, signer.publicKey, secrets.sealingKey), secrets.releaseKey);
    // The one way a run becomes dead-lettered: state, alert (outbox) and DLQ entry, for claims and reports alike.
    const deadLettering = new DeadLettering({ db, queues, cipher, alerts: alerts.outbox, log });
    const runs = new Runs({
      db,
      packages,
      queues,
      cipher,
      signer,
      segments: config.segments,
      jobTtlSeconds: config.jobTtlSeconds,
      idempotencyWindowHours: config.idempotencyWindowHours,
      credentials,
      runnerEvents,
      releaseGate: releases,
      deadLettering,
      log,
    });
    // A revoked bootstrap runner token stops admitting HTTP requests as soon as any control room
    // sharing the database reads the revocation (at once here, within the key cache delay elsewhere).
    const runnerKeys = new RunnerKeys(db, secrets.runnerPublicKeys, RUNNER_KEYS_TTL_MS, Date.now, (segment) => secrets.runnerTokenHashes.delete(segment));
    await runnerKeys.reload();
    // Every replica: each keeps its own cache of runner keys.
    const keyRefresh = setInterval(
      () => void runnerKeys.reload().catch((err: Error) => log.warn({ err: { message: err.message } }, 'runner key refresh failed')),
      RUNNER_KEYS_TTL_MS,
    );
    keyRefresh.unref();
    cleanups.push(async () => clearInterval(keyRefresh));
    // Every replica: a BullMQ worker; each report job goes to one consumer and is applied under the attempt's fence.
    const consumer = createReportConsumer({
      db,
      runs,
      queues,
      sealingKey: secrets.sealingKey,
      connection: redis,
      prefix: config.queuePrefix,
      segments: config.segments,
      log,
      runnerEvents,
      deadLettering,
      runnerKeys,
      hashJobId: auditHash,
    });
    cleanups.push(() => consumer.close());
    const screenshots = new Screenshots(db, cipher, config.screenshotRetentionDays);
    // Retention purges write disposal records (what went, how many, which policy) in their own transactions.
    const retention = new Retention({
      db,
      audit,
      screenshotRetentionDays: config.screenshotRetentionDays,
      auditRetentionDays: config.auditRetentionDays,
      runRetentionDays: config.runRetentionDays,
    });
    // Leader only. The sweeps would be safe anywhere (a run's job id and a dead letter's entry id
    // are fixed, so BullMQ adds each once), but one sweep is enough; retention writes a disposal
    // record per purge, so two replicas purging at once would record one disposal twice.
    leadership.every('enqueue sweep', 30_000, () => runs.enqueuePending());
    leadership.every('dlq entry sweep', 30_000, () => deadLettering.publishPending());
    // An active run whose attempt's lease lapsed and whose job is gone (no claim will ever come).
    leadership.every('lost attempt sweep', config.lostAttemptSweepSeconds * 1000, () => runs.sweepLostAttempts());
    leadership.every('screenshot expiry', 30_000, () => retention.purgeScreenshots());
    // Signed audit heads at intervals (leader only: one head per interval, not one per replica) and
    // once more on shutdown by every replica (after the app stopped taking requests: cleanups run
    // in reverse; a head already signed is kept once, ON CONFLICT), and audit and run PHI expiry
    // on the same timer.
    leadership.every('audit head signing', config.auditHeadIntervalSeconds * 1000, () => auditHeads.signIfMoved());
    leadership.every('audit expiry', config.auditHeadIntervalSeconds * 1000, () => retention.purgeAudit());
    leadership.every('run PHI purge', config.auditHeadIntervalSeconds * 1000, () => retention.purgeRuns());
    // The timers stop (and the lock is handed over) after the shutdown head below; the earlier
    // cleanup of the same leadership is then a no-op.
    cleanups.push(() => leadership.close());
    cleanups.push(async () => {
      await auditHeads.signIfMoved();
    });
    const deadLetters = new DeadLetters({ db, runs, queues, audit, log });
    const cancellation = new RunCancellation({ db, queues, redis, prefix: config.queuePrefix, log, signer });
    const identity = new Identity({
      db,
      dataKey: secrets.dataKey,
      dataKeyId: secrets.dataKeyId,
      segments: config.segments,
      onRunnerKeysChanged: () => runnerKeys.reload(),
      settings: { sessionIdleMinutes: config.sessionIdleMinutes, sessionMaxHours: config.sessionMaxHours, tokenMaxDays: config.tokenMaxDays },
    });
    // Every replica: BullMQ hands each tick to one worker, and a fire makes its run under an
    // idempotency key of (schedule, fire time), so a tick redelivered after a crash fires once;
    // reconciling Redis with the table is idempotent (upserts and removals of job schedulers).
    const scheduling = await startSchedules({
      db,
      packages,
      runs,
      cipher,
      audit,
      log,
      connection: redis,
      prefix: config.queuePrefix,
      segments: config.segments,
      minIntervalSeconds: config.scheduleMinIntervalSeconds,
      releaseGate: releases,
      misfireGraceMs: config.scheduleMisfireGraceSeconds * 1000,
    });
    cleanups.push(() => scheduling.close());
    const metrics = new ControlRoomMetrics({ db, redis, queuePrefix: config.queuePrefix, segments: config.segments });
    cleanups.push(() => metrics.close());
    const compliance = new Compliance({
      db,
      audit,
      heads: auditHeads,
      releaseKey: secrets.releaseKey,
      settings: complianceSettings(config, [...secrets.runnerTokenHashes.keys()]),
      alerts: alerts.outbox,
      ...(vault ? { transitKeyRotatedAt: async (name: string) => (await vault.transitReadKey(name)).latestVersionCreatedAt } : {}),
    });
    scheduleCompliance(leadership, compliance, log, config.complianceIntervalSeconds * 1000);
    const sso = config.sso
      ? new SsoLogin({
          config: config.sso,
          clientSecret: readClientSecret(config.sso.clientSecretFile),
          db,
          identity,
          audit,
          dataKey: secrets.dataKey,
          dataKeyId: secrets.dataKeyId,
        })
      : undefined;
    identity.localSignInPolicy = new LocalSignInPolicy({
      db,
      audit,
      alerts: alerts.outbox,
      ssoConfigured: config.sso !== undefined,
      breakGlassUsers: config.breakGlassUsers,
    });
    // Leavers: the provider is asked about every linked person at this interval (leader only).
    if (sso && config.sso) leadership.every('sso leaver check', config.sso.checkSeconds * 1000, () => sso.checkLeavers());
    const app = buildApp({
      db,
      redis,
      keys,
      packages,
      runs,
      screenshots,
      credentials: credentialStore,
      tokens: secrets,
      publicKeysPem,
      maxPackageBytes: config.maxPackageBytes,
      log,
      audit: { log: audit, heads: auditHeads, hash: auditHash, releasePublicKeyPem: publicKeyPem(secrets.releaseKey) },
      deadLetters,
      alerts: alerts.outbox,
      breakGlassAlerts: config.production,
      cancellation,
      queues,
      identity,
      prodSegments: config.prodSegments,
      segments: config.segments,
      releases,
      ownership,
      https: config.tls ? httpsOptions(config.tls) : undefined,
      requireRunnerCertificates: config.tls?.clientCaFile !== undefined,
      schedules: scheduling.schedules,
      metrics,
      compliance,
      accessReviews: new AccessReviews({ db, audit }),
      sso,
    });
    warnIfPlainHttp({ tls: config.tls !== undefined, terminated: config.tlsTerminated, production: config.production }, log);
    cleanups.push(() => app.close());
    const address = await app.listen({ host: config.host, port: config.port });
    // Every replica at start (safe concurrently: a run's job id is fixed).
    await runs.enqueuePending(0).catch(() => undefined);
    return { app, url: address.replace('[::1]', 'localhost'), runs, publicKeysPem, close, releases, schedules: scheduling.schedules };
  } catch (err) {
    await close();
    throw err;
  }
}
