import { join, resolve } from 'node:path';
import { z } from 'zod';
import { csv, logLevel, optionalString, parseConfig, port, positiveInt, SegmentName } from '@orderly/shared';
import { MfaRole, ssoConfig, ssoRefinements } from './identity/sso/config';

/** The control room's configuration: parsed once from the environment, frozen. */
export const ControlRoomConfigSchema = z
  .object({
    ORDERLY_HOST: z.string().default('127.0.0.1'),
    ORDERLY_PORT: port(7300),
    ORDERLY_DATA_DIR: z.string().default('.orderly'),
    DATABASE_URL: optionalString,
    REDIS_URL: z.string().default('redis://127.0.0.1:6379'),
    ORDERLY_QUEUE_PREFIX: z
      .string()
      .regex(/^[A-Za-z0-9_-]+$/)
      .default('orderly'),
    ORDERLY_SEGMENTS: csv(SegmentName).default(['demo'] as never),
    ORDERLY_PROD_SEGMENTS: csv(SegmentName).default([]),
    ORDERLY_MAX_PACKAGE_BYTES: positiveInt(10 * 1024 * 1024),
    ORDERLY_JOB_TTL_SECONDS: positiveInt(24 * 3600),
    ORDERLY_IDEMPOTENCY_WINDOW_HOURS: positiveInt(7 * 24),
    ORDERLY_LOG_LEVEL: logLevel,
    VAULT_ADDR: optionalString.pipe(z.url().optional()),
    VAULT_TOKEN_FILE: optionalString,
    ORDERLY_VAULT_WRAP_TTL_SECONDS: positiveInt(60),
    ORDERLY_RUN_TOKEN_TTL_SECONDS: positiveInt(300),
    ORDERLY_VAULT_BUDGET_SECONDS: positiveInt(15),
    ORDERLY_RUNNER_CIDRS: csv(z.cidrv4().or(z.cidrv6())).default([]),
    ORDERLY_SIGNING_TRANSIT_KEY: optionalString.pipe(
      z
        .string()
        .regex(/^[A-Za-z0-9_-]{1,64}$/)
        .optional(),
    ),
    ORDERLY_TRANSIT_KEY: optionalString.pipe(
      z
        .string()
        .regex(/^[A-Za-z0-9_-]{1,64}$/)
        .optional(),
    ),
    ORDERLY_CREDENTIAL_MAX_AGE_DAYS: positiveInt(90),
    ORDERLY_SCREENSHOT_RETENTION_DAYS: z.coerce.number().min(0).default(30),
    ORDERLY_RUN_RETENTION_DAYS: z.coerce.number().min(0).default(0),
    ORDERLY_AUDIT_RETENTION_DAYS: z.coerce.number().int().min(0).default(2555),
    ORDERLY_AUDIT_HEAD_INTERVAL_SECONDS: positiveInt(300),
    ORDERLY_COMPLIANCE_INTERVAL_SECONDS: positiveInt(86_400),
    ORDERLY_ENV: z.enum(['development', 'production']).default('development'),
    ORDERLY_TLS_CERT_FILE: optionalString,
    ORDERLY_TLS_KEY_FILE: optionalString,
    ORDERLY_TLS_CLIENT_CA_FILE: optionalString,
    ORDERLY_TLS_TERMINATED: z.enum(['true', 'false']).default('false'),
    ORDERLY_ALERT_WEBHOOK_URL: optionalString.pipe(z.url().optional()),
    ORDERLY_ALERT_WEBHOOK_SECRET_FILE: optionalString,
    ORDERLY_ALERT_QUEUE_AGE_SECONDS: positiveInt(900),
    ORDERLY_SESSION_IDLE_MINUTES: positiveInt(15),
    ORDERLY_SESSION_MAX_HOURS: positiveInt(12),
    ORDERLY_TOKEN_MAX_DAYS: positiveInt(90),
    ORDERLY_SCHEDULE_MIN_INTERVAL_SECONDS: positiveInt(60),
    ORDERLY_SCHEDULE_MISFIRE_GRACE_SECONDS: positiveInt(60),
    ORDERLY_LEADER_POLL_SECONDS: positiveInt(5),
    ORDERLY_LOST_ATTEMPT_SWEEP_SECONDS: positiveInt(30),
    // Single sign-on (OpenID Connect): see identity/sso.
    ORDERLY_OIDC_ISSUER: optionalString.pipe(z.url().optional()),
    ORDERLY_OIDC_CLIENT_ID: optionalString.pipe(z.string().max(256).optional()),
    ORDERLY_OIDC_CLIENT_SECRET_FILE: optionalString,
    ORDERLY_OIDC_REDIRECT_URL: optionalString.pipe(z.url().optional()),
    ORDERLY_OIDC_GROUPS_CLAIM: z
      .string()
      .regex(/^[A-Za-z0-9_:./-]{1,200}$/)
      .default('groups'),
    ORDERLY_OIDC_GROUP_ROLES: optionalString,
    ORDERLY_OIDC_MFA_AMR: csv(z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/)).default(['mfa', 'otp', 'hwk'] as never),
    ORDERLY_OIDC_MFA_ROLES: csv(MfaRole).default([...MfaRole.options] as never),
    // The leaver check: at most 5 minutes between two questions to the provider.
    ORDERLY_OIDC_CHECK_SECONDS: z.coerce.number().int().min(1).max(300).default(300),
    // With single sign-on configured, the only local accounts that may still sign in (none by default).
    ORDERLY_BREAK_GLASS_USERS: csv(z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/)).default([]),
  })
  .superRefine(ssoRefinements)
  .refine((env) => env.ORDERLY_PROD_SEGMENTS.every((s) => env.ORDERLY_SEGMENTS.includes(s)), {
    message: 'every production segment must be one of ORDERLY_SEGMENTS',
    path: ['ORDERLY_PROD_SEGMENTS'],
  })
  .refine((env) => !env.VAULT_ADDR || env.VAULT_TOKEN_FILE, { message: 'VAULT_TOKEN_FILE is required with VAULT_ADDR', path: ['VAULT_TOKEN_FILE'] })
  .refine((env) => !env.ORDERLY_TLS_CERT_FILE === !env.ORDERLY_TLS_KEY_FILE, {
    message: 'ORDERLY_TLS_CERT_FILE and ORDERLY_TLS_KEY_FILE go together',
    path: ['ORDERLY_TLS_KEY_FILE'],
  })
  .refine((env) => !env.ORDERLY_TLS_CLIENT_CA_FILE || env.ORDERLY_TLS_CERT_FILE, {
    message: 'client certificates (mTLS) need ORDERLY_TLS_CERT_FILE and ORDERLY_TLS_KEY_FILE',
    path: ['ORDERLY_TLS_CLIENT_CA_FILE'],
  })
  // Production never serves tokens and PHI in the clear, unless a TLS proxy terminates in front.
  .refine((env) => env.ORDERLY_ENV !== 'production' || env.ORDERLY_TLS_CERT_FILE || env.ORDERLY_TLS_TERMINATED === 'true', {
    message:
      'production refuses plain HTTP: set ORDERLY_TLS_CERT_FILE and ORDERLY_TLS_KEY_FILE, or ORDERLY_TLS_TERMINATED=true when TLS is terminated in front of the control room',
    path: ['ORDERLY_ENV'],
  })
  .refine((env) => !env.ORDERLY_ALERT_WEBHOOK_URL || env.ORDERLY_ALERT_WEBHOOK_SECRET_FILE, {
    message: 'ORDERLY_ALERT_WEBHOOK_SECRET_FILE is required with ORDERLY_ALERT_WEBHOOK_URL',
    path: ['ORDERLY_ALERT_WEBHOOK_SECRET_FILE'],
  })
  .transform((env) => {
    const dataDir = resolve(env.ORDERLY_DATA_DIR);
    return {
      host: env.ORDERLY_HOST,
      port: env.ORDERLY_PORT,
      dataDir,
      databaseUrl: env.DATABASE_URL,
      redisUrl: env.REDIS_URL,
      queuePrefix: env.ORDERLY_QUEUE_PREFIX,
      segments: env.ORDERLY_SEGMENTS as SegmentName[],
      /** Production segments: their runners run only packages with a release attestation for `prod`. */
      prodSegments: env.ORDERLY_PROD_SEGMENTS as SegmentName[],
      maxPackageBytes: env.ORDERLY_MAX_PACKAGE_BYTES,
      jobTtlSeconds: env.ORDERLY_JOB_TTL_SECONDS,
      /** How long after a run ended its idempotency key still returns it rather than a new run. */
      idempotencyWindowHours: env.ORDERLY_IDEMPOTENCY_WINDOW_HOURS,
      logLevel: env.ORDERLY_LOG_LEVEL,
      /** Vault Transit key for PHI at rest (envelope encryption); unset: the local data key. */
      transitKey: env.ORDERLY_TRANSIT_KEY,
      /** Vault Transit ed25519 key that signs job envelopes; unset: the local signing key. */
      signingTransitKey: env.ORDERLY_SIGNING_TRANSIT_KEY,
      /** Days a masked screenshot is kept (encrypted) before it is deleted. */
      screenshotRetentionDays: env.ORDERLY_SCREENSHOT_RETENTION_DAYS,
      /** Days a finished run keeps its PHI (input, result, steps, screenshots, logs) before the purge; 0 keeps it forever. */
      runRetentionDays: env.ORDERLY_RUN_RETENTION_DAYS,
      /** A credential without its own max age is overdue for rotation after this many days. */
      credentialMaxAgeDays: env.ORDERLY_CREDENTIAL_MAX_AGE_DAYS,
      /** Days audit events are kept before expiry removes them (a prefix of the chain, itself audited); 0 keeps them forever. */
      auditRetentionDays: env.ORDERLY_AUDIT_RETENTION_DAYS,
      /** How often the audit chain head is signed (and once on shutdown), when it moved. */
      auditHeadIntervalSeconds: env.ORDERLY_AUDIT_HEAD_INTERVAL_SECONDS,
      /** How often the leader runs the compliance checks on its own (a signed report each time); a day by default. */
      complianceIntervalSeconds: env.ORDERLY_COMPLIANCE_INTERVAL_SECONDS,
      vault: env.VAULT_ADDR
        ? {
            address: env.VAULT_ADDR,
            tokenFile: resolve(env.VAULT_TOKEN_FILE!),
            wrapTtlSeconds: env.ORDERLY_VAULT_WRAP_TTL_SECONDS,
            runTokenTtlSeconds: env.ORDERLY_RUN_TOKEN_TTL_SECONDS,
            budgetMs: env.ORDERLY_VAULT_BUDGET_SECONDS * 1000,
            runnerCidrs: env.ORDERLY_RUNNER_CIDRS,
          }
        : undefined,
      production: env.ORDERLY_ENV === 'production',
      /** HTTPS (TLS 1.3 minimum) when a certificate is given; mTLS for runner routes with a client CA. */
      tls: env.ORDERLY_TLS_CERT_FILE
        ? {
            certFile: resolve(env.ORDERLY_TLS_CERT_FILE),
            keyFile: resolve(env.ORDERLY_TLS_KEY_FILE!),
            clientCaFile: env.ORDERLY_TLS_CLIENT_CA_FILE ? resolve(env.ORDERLY_TLS_CLIENT_CA_FILE) : undefined,
          }
        : undefined,
      /** TLS is terminated by a proxy in front: plain HTTP is allowed in production then. */
      tlsTerminated: env.ORDERLY_TLS_TERMINATED === 'true',
      /** Signed alert webhook (dead letters, queue age); unset: alerts are only logged and counted. */
      alerts: {
        webhookUrl: env.ORDERLY_ALERT_WEBHOOK_URL,
        secretFile: env.ORDERLY_ALERT_WEBHOOK_SECRET_FILE ? resolve(env.ORDERLY_ALERT_WEBHOOK_SECRET_FILE) : undefined,
        queueAgeSeconds: env.ORDERLY_ALERT_QUEUE_AGE_SECONDS,
      },
      /** Key material and tokens live here unless configured otherwise; created 0600 on first start. */
      secretsDir: join(dataDir, 'secrets'),
      pgliteDir: join(dataDir, 'pglite'),
      /** Console sessions: automatic logoff after this idle time, and an absolute limit. */
      sessionIdleMinutes: env.ORDERLY_SESSION_IDLE_MINUTES,
      sessionMaxHours: env.ORDERLY_SESSION_MAX_HOURS,
      /** Longest lifetime an API token may be given. */
      tokenMaxDays: env.ORDERLY_TOKEN_MAX_DAYS,
      /** Schedules may not fire more often than this (interval, or the gap between cron fires). */
      scheduleMinIntervalSeconds: env.ORDERLY_SCHEDULE_MIN_INTERVAL_SECONDS,
      scheduleMisfireGraceSeconds: env.ORDERLY_SCHEDULE_MISFIRE_GRACE_SECONDS,
      /** Replicas on one PostgreSQL: how often a follower tries to take leadership (and the leader checks it still holds it). */
      leaderPollSeconds: env.ORDERLY_LEADER_POLL_SECONDS,
      /** How often the leader looks for attempts whose lease lapsed with no report (runs/lost-attempts.ts). */
      lostAttemptSweepSeconds: env.ORDERLY_LOST_ATTEMPT_SWEEP_SECONDS,
      /** OpenID Connect single sign-on (identity/sso); unset without ORDERLY_OIDC_ISSUER. */
      sso: ssoConfig(env, join(dataDir, 'secrets')),
      /** Local accounts allowed to sign in while single sign-on is configured (identity/break-glass.ts). */
      breakGlassUsers: env.ORDERLY_BREAK_GLASS_USERS,
    };
  });
export type ControlRoomConfig = z.infer<typeof ControlRoomConfigSchema>;

export function loadControlRoomConfig(env: Record<string, string | undefined> = process.env): ControlRoomConfig {
  return parseConfig(ControlRoomConfigSchema, env);
}
