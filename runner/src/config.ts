import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { z } from 'zod';
import { KeyObject } from 'node:crypto';
import { logLevel, optionalString, OrderlyError, parseConfig, parseControlRoomPublicKeys, parseReleasePublicKey, positiveInt, ReleaseChannel, SegmentName } from '@orderly/shared';

/** The runner's configuration: parsed once from the environment, frozen. */
export const RunnerConfigSchema = z
  .object({
    ORDERLY_SEGMENT: SegmentName,
    ORDERLY_CONTROL_ROOM_URL: z.url().default('http://127.0.0.1:7300'),
    ORDERLY_CONTROL_ROOM_PUBLIC_KEY_FILE: z.string({ error: "is required: the control room's public key file (control-room.pub)" }).min(1),
    ORDERLY_RUNNER_TOKEN_FILE: z.string({ error: "is required: a file holding this runner's token" }).min(1),
    REDIS_URL: z.string().default('redis://127.0.0.1:6379'),
    ORDERLY_QUEUE_PREFIX: z.string().regex(/^[A-Za-z0-9_-]+$/).default('orderly'),
    ORDERLY_CHROMIUM_PATH: z.string().default('/usr/bin/chromium'),
    ORDERLY_CACHE_DIR: z.string().default('.orderly/runner-cache'),
    ORDERLY_RUNNER_ID: z.string().regex(/^[A-Za-z0-9._-]{1,100}$/).optional(),
    ORDERLY_BOT_HOST_USER: z.string().default('nobody'),
    ORDERLY_CONCURRENCY: positiveInt(1),
    ORDERLY_SHUTDOWN_GRACE_SECONDS: positiveInt(30),
    ORDERLY_LOG_LEVEL: logLevel,
    VAULT_ADDR: z.url().optional().or(z.literal('').transform(() => undefined)),
    ORDERLY_JOB_LOCK_MS: positiveInt(30_000),
    ORDERLY_STALLED_INTERVAL_MS: positiveInt(30_000),
    ORDERLY_RUNNER_CHANNEL: ReleaseChannel.default('dev'),
    ORDERLY_CONTROL_ROOM_CA_FILE: optionalString,
    ORDERLY_RUNNER_CERT_FILE: optionalString,
    ORDERLY_RUNNER_KEY_FILE: optionalString,
  })
  .refine((env) => !env.ORDERLY_RUNNER_CERT_FILE === !env.ORDERLY_RUNNER_KEY_FILE, { message: 'ORDERLY_RUNNER_CERT_FILE and ORDERLY_RUNNER_KEY_FILE go together', path: ['ORDERLY_RUNNER_KEY_FILE'] })
  .transform((env) => ({
    segment: env.ORDERLY_SEGMENT,
    controlRoomUrl: env.ORDERLY_CONTROL_ROOM_URL.replace(/\/$/, ''),
    publicKeyFile: resolve(env.ORDERLY_CONTROL_ROOM_PUBLIC_KEY_FILE),
    tokenFile: resolve(env.ORDERLY_RUNNER_TOKEN_FILE),
    redisUrl: env.REDIS_URL,
    queuePrefix: env.ORDERLY_QUEUE_PREFIX,
    chromiumPath: env.ORDERLY_CHROMIUM_PATH,
    cacheDir: resolve(env.ORDERLY_CACHE_DIR),
    runnerId: env.ORDERLY_RUNNER_ID ?? `${hostname()}-${process.pid}`,
    botHostUser: env.ORDERLY_BOT_HOST_USER,
    concurrency: env.ORDERLY_CONCURRENCY,
    shutdownGraceMs: env.ORDERLY_SHUTDOWN_GRACE_SECONDS * 1000,
    logLevel: env.ORDERLY_LOG_LEVEL,
    /** The runner holds no Vault token of its own: each run logs in with its own AppRole grant. */
    vaultAddress: env.VAULT_ADDR,
    /** A dead runner's run is picked up after at most lock + stalled-check interval. */
    jobLockMs: env.ORDERLY_JOB_LOCK_MS,
    stalledIntervalMs: env.ORDERLY_STALLED_INTERVAL_MS,
    /** `prod`: run only packages with a valid release attestation for `prod` (production segments). */
    channel: env.ORDERLY_RUNNER_CHANNEL,
    /** HTTPS to the control room: the CA to trust and this runner's client certificate (mTLS). */
    controlRoomTls: {
      caFile: env.ORDERLY_CONTROL_ROOM_CA_FILE ? resolve(env.ORDERLY_CONTROL_ROOM_CA_FILE) : undefined,
      certFile: env.ORDERLY_RUNNER_CERT_FILE ? resolve(env.ORDERLY_RUNNER_CERT_FILE) : undefined,
      keyFile: env.ORDERLY_RUNNER_KEY_FILE ? resolve(env.ORDERLY_RUNNER_KEY_FILE) : undefined,
    },
  }));
export type RunnerConfig = z.infer<typeof RunnerConfigSchema>;

/** Command-line options override the environment of the same name. */
export function loadRunnerConfig(overrides: Record<string, string> = {}, env: Record<string, string | undefined> = process.env): RunnerConfig {
  return parseConfig(RunnerConfigSchema, { ...env, ...overrides });
}

/** Reads the key and token files the config names, with coded errors that name the file only. */
export function loadRunnerCredentials(config: RunnerConfig): { controlRoomKeys: ReturnType<typeof parseControlRoomPublicKeys>; token: string; releaseKey: KeyObject | undefined } {
  const read = (path: string, what: string) => {
    try {
      return readFileSync(path, 'utf8');
    } catch {
      throw new OrderlyError('ORDERLY_E_CONFIG_INVALID', `cannot read ${what} at ${path}`);
    }
  };
  const publicKeysText = read(config.publicKeyFile, "the control room's public key");
  const controlRoomKeys = parseControlRoomPublicKeys(publicKeysText);
  // Files written before release attestations lack the release key: fine for dev, not for prod.
  const releaseKey = parseReleasePublicKey(publicKeysText);
  if (config.channel === 'prod' && !releaseKey) {
    throw new OrderlyError('ORDERLY_E_CONFIG_INVALID', `${config.publicKeyFile} holds no release key, which a prod-channel runner needs: fetch the current control-room.pub`);
  }
  const token = read(config.tokenFile, 'the runner token').trim();
  if (token.length < 16) throw new OrderlyError('ORDERLY_E_CONFIG_INVALID', `the runner token in ${config.tokenFile} is too short`);
  return { controlRoomKeys, token, releaseKey };
}
