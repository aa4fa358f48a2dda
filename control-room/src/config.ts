import { join, resolve } from 'node:path';
import { z } from 'zod';
import { csv, logLevel, optionalString, parseConfig, port, positiveInt, SegmentName } from '@orderly/shared';

/** The control room's configuration: parsed once from the environment, frozen. */
export const ControlRoomConfigSchema = z
  .object({
    ORDERLY_HOST: z.string().default('127.0.0.1'),
    ORDERLY_PORT: port(7300),
    ORDERLY_DATA_DIR: z.string().default('.orderly'),
    DATABASE_URL: optionalString,
    REDIS_URL: z.string().default('redis://127.0.0.1:6379'),
    ORDERLY_QUEUE_PREFIX: z.string().regex(/^[A-Za-z0-9_-]+$/).default('orderly'),
    ORDERLY_SEGMENTS: csv(SegmentName).default(['demo'] as never),
    ORDERLY_PROD_SEGMENTS: csv(SegmentName).default([]),
    ORDERLY_MAX_PACKAGE_BYTES: positiveInt(10 * 1024 * 1024),
    ORDERLY_JOB_TTL_SECONDS: positiveInt(24 * 3600),
    ORDERLY_LOG_LEVEL: logLevel,
    VAULT_ADDR: optionalString.pipe(z.url().optional()),
    VAULT_TOKEN_FILE: optionalString,
    ORDERLY_VAULT_WRAP_TTL_SECONDS: positiveInt(60),
    ORDERLY_RUN_TOKEN_TTL_SECONDS: positiveInt(300),
    ORDERLY_VAULT_BUDGET_SECONDS: positiveInt(15),
    ORDERLY_RUNNER_CIDRS: csv(z.cidrv4().or(z.cidrv6())).default([]),
    ORDERLY_SIGNING_TRANSIT_KEY: optionalString.pipe(z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).optional()),
    ORDERLY_TRANSIT_KEY: optionalString.pipe(z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).optional()),
    ORDERLY_CREDENTIAL_MAX_AGE_DAYS: positiveInt(90),
    ORDERLY_SCREENSHOT_RETENTION_DAYS: z.coerce.number().min(0).default(30),
    ORDERLY_SESSION_IDLE_MINUTES: positiveInt(15),
    ORDERLY_SESSION_MAX_HOURS: positiveInt(12),
    ORDERLY_TOKEN_MAX_DAYS: positiveInt(90),
  })
  .refine((env) => env.ORDERLY_PROD_SEGMENTS.every((s) => env.ORDERLY_SEGMENTS.includes(s)), { message: 'every production segment must be one of ORDERLY_SEGMENTS', path: ['ORDERLY_PROD_SEGMENTS'] })
  .refine((env) => !env.VAULT_ADDR || env.VAULT_TOKEN_FILE, { message: 'VAULT_TOKEN_FILE is required with VAULT_ADDR', path: ['VAULT_TOKEN_FILE'] })
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
      logLevel: env.ORDERLY_LOG_LEVEL,
      /** Vault Transit key for PHI at rest (envelope encryption); unset: the local data key. */
      transitKey: env.ORDERLY_TRANSIT_KEY,
      /** Vault Transit ed25519 key that signs job envelopes; unset: the local signing key. */
      signingTransitKey: env.ORDERLY_SIGNING_TRANSIT_KEY,
      /** Days a masked screenshot is kept (encrypted) before it is deleted. */
      screenshotRetentionDays: env.ORDERLY_SCREENSHOT_RETENTION_DAYS,
      /** A credential without its own max age is overdue for rotation after this many days. */
      credentialMaxAgeDays: env.ORDERLY_CREDENTIAL_MAX_AGE_DAYS,
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
      /** Key material and tokens live here unless configured otherwise; created 0600 on first start. */
      secretsDir: join(dataDir, 'secrets'),
      pgliteDir: join(dataDir, 'pglite'),
      /** Console sessions: automatic logoff after this idle time, and an absolute limit. */
      sessionIdleMinutes: env.ORDERLY_SESSION_IDLE_MINUTES,
      sessionMaxHours: env.ORDERLY_SESSION_MAX_HOURS,
      /** Longest lifetime an API token may be given. */
      tokenMaxDays: env.ORDERLY_TOKEN_MAX_DAYS,
    };
  });
export type ControlRoomConfig = z.infer<typeof ControlRoomConfigSchema>;

export function loadControlRoomConfig(env: Record<string, string | undefined> = process.env): ControlRoomConfig {
  return parseConfig(ControlRoomConfigSchema, env);
}
