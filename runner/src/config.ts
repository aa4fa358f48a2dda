import { readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { z } from 'zod';
import { KeyObject } from 'node:crypto';
import {
  ATTEMPT_LEASE_MAX_MS,
  ATTEMPT_LEASE_MIN_MS,
  csv,
  loadPrivateKey,
  logLevel,
  optionalString,
  OrderlyError,
  parseConfig,
  parseControlRoomPublicKeys,
  parseReleasePublicKey,
  positiveInt,
  ReleaseChannel,
  SegmentName,
} from '@orderly/shared';

/** The runner's configuration: parsed once from the environment, frozen. */
export const RunnerConfigSchema = z
  .object({
    ORDERLY_SEGMENT: SegmentName,
    /** The control room's production segments (the same list): a runner for one never runs bots uncontained. */
    ORDERLY_PROD_SEGMENTS: csv(SegmentName).default([]),
    ORDERLY_CONTROL_ROOM_URL: z.url().default('http://127.0.0.1:7300'),
    ORDERLY_CONTROL_ROOM_PUBLIC_KEY_FILE: z.string({ error: "is required: the control room's public key file (control-room.pub)" }).min(1),
    ORDERLY_RUNNER_TOKEN_FILE: z.string({ error: "is required: a file holding this runner's token" }).min(1),
    ORDERLY_RUNNER_SIGNING_KEY_FILE: optionalString,
    REDIS_URL: z.string().default('redis://127.0.0.1:6379'),
    ORDERLY_QUEUE_PREFIX: z
      .string()
      .regex(/^[A-Za-z0-9_-]+$/)
      .default('orderly'),
    ORDERLY_CHROMIUM_PATH: z.string().default('/usr/bin/chromium'),
    ORDERLY_CACHE_DIR: z.string().default('.orderly/runner-cache'),
    ORDERLY_RUNNER_ID: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,100}$/)
      .optional(),
    ORDERLY_SANDBOX: z.enum(['bwrap', 'none']).default('bwrap'),
    ORDERLY_SANDBOX_UID_BASE: positiveInt(64200),
    ORDERLY_SANDBOX_MEMORY_MB: positiveInt(1536),
    ORDERLY_SANDBOX_PIDS: positiveInt(512),
    ORDERLY_SANDBOX_FILE_MB: positiveInt(256),
    ORDERLY_SANDBOX_TMP_MB: positiveInt(512),
    ORDERLY_SANDBOX_CPU_SECONDS: positiveInt(900),
    ORDERLY_SANDBOX_PREWARM: z.enum(['0', '1']).default('1'),
    ORDERLY_EGRESS_DENY: z.string().default(''),
    ORDERLY_ENV: z.enum(['development', 'production']).default('development'),
    ORDERLY_CONCURRENCY: positiveInt(1),
    ORDERLY_SHUTDOWN_GRACE_SECONDS: positiveInt(30),
    ORDERLY_LOG_LEVEL: logLevel,
    VAULT_ADDR: z
      .url()
      .optional()
      .or(z.literal('').transform(() => undefined)),
    ORDERLY_JOB_LOCK_MS: positiveInt(30_000),
    ORDERLY_STALLED_INTERVAL_MS: positiveInt(30_000),
    ORDERLY_ATTEMPT_LEASE_MS: z.coerce.number().int().min(ATTEMPT_LEASE_MIN_MS).max(ATTEMPT_LEASE_MAX_MS).optional(),
    ORDERLY_RUNNER_CHANNEL: ReleaseChannel.default('dev'),
    ORDERLY_CONTROL_ROOM_CA_FILE: optionalString,
    ORDERLY_RUNNER_CERT_FILE: optionalString,
    ORDERLY_RUNNER_KEY_FILE: optionalString,
  })
  .refine((env) => !env.ORDERLY_RUNNER_CERT_FILE === !env.ORDERLY_RUNNER_KEY_FILE, {
    message: 'ORDERLY_RUNNER_CERT_FILE and ORDERLY_RUNNER_KEY_FILE go together',
    path: ['ORDERLY_RUNNER_KEY_FILE'],
  })
  .transform((env) => ({
    segment: env.ORDERLY_SEGMENT,
    controlRoomUrl: env.ORDERLY_CONTROL_ROOM_URL.replace(/\/$/, ''),
    publicKeyFile: resolve(env.ORDERLY_CONTROL_ROOM_PUBLIC_KEY_FILE),
    tokenFile: resolve(env.ORDERLY_RUNNER_TOKEN_FILE),
    /** The runner's Ed25519 private key (0600) that signs its reports; beside the token file by default. */
    signingKeyFile: resolve(env.ORDERLY_RUNNER_SIGNING_KEY_FILE ?? defaultSigningKeyFile(env.ORDERLY_RUNNER_TOKEN_FILE)),
    redisUrl: env.REDIS_URL,
    queuePrefix: env.ORDERLY_QUEUE_PREFIX,
    chromiumPath: env.ORDERLY_CHROMIUM_PATH,
    cacheDir: resolve(env.ORDERLY_CACHE_DIR),
    runnerId: env.ORDERLY_RUNNER_ID ?? `${hostname()}-${process.pid}`,
    /** How bot code is contained; `none` is for development only and refused in production. */
    sandbox: {
      mode: env.ORDERLY_SANDBOX,
      /** Slot i runs its sandboxes as uid base + i (when the runner is root). */
      uidBase: env.ORDERLY_SANDBOX_UID_BASE,
      limits: {
        memoryBytes: env.ORDERLY_SANDBOX_MEMORY_MB * 1024 * 1024,
        pids: env.ORDERLY_SANDBOX_PIDS,
        fileBytes: env.ORDERLY_SANDBOX_FILE_MB * 1024 * 1024,
        tmpBytes: env.ORDERLY_SANDBOX_TMP_MB * 1024 * 1024,
        cpuSeconds: env.ORDERLY_SANDBOX_CPU_SECONDS,
      },
      prewarm: env.ORDERLY_SANDBOX_PREWARM === '1',
    },
    production: env.ORDERLY_ENV === 'production',
    /** True when ORDERLY_PROD_SEGMENTS names this runner's segment. */
    productionSegment: (env.ORDERLY_PROD_SEGMENTS as string[]).includes(env.ORDERLY_SEGMENT),
    /** More endpoints (`host:port`, comma-separated) no bot may reach whatever its manifest says, e.g. the database. */
    egressDeny: parseEndpoints(env.ORDERLY_EGRESS_DENY),
    concurrency: env.ORDERLY_CONCURRENCY,
    shutdownGraceMs: env.ORDERLY_SHUTDOWN_GRACE_SECONDS * 1000,
    logLevel: env.ORDERLY_LOG_LEVEL,
    /** The runner holds no Vault token of its own: each run logs in with its own AppRole grant. */
    vaultAddress: env.VAULT_ADDR,
    /** A dead runner's run is picked up after at most lock + stalled-check interval. */
    jobLockMs: env.ORDERLY_JOB_LOCK_MS,
    stalledIntervalMs: env.ORDERLY_STALLED_INTERVAL_MS,
    /**
     * The attempt lease asked for at claim (fencing): a second claim while it is alive is refused.
     * Default: the job lock, so a dead runner's run is taken over about as soon as BullMQ redelivers it.
     */
    attemptLeaseMs: env.ORDERLY_ATTEMPT_LEASE_MS ?? Math.min(ATTEMPT_LEASE_MAX_MS, Math.max(ATTEMPT_LEASE_MIN_MS, env.ORDERLY_JOB_LOCK_MS)),
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

/** `runner-demo.token` -> `runner-demo.key`; any other name gets `.key` appended. */
export function defaultSigningKeyFile(tokenFile: string): string {
  return tokenFile.endsWith('.token') ? `${tokenFile.slice(0, -'.token'.length)}.key` : `${tokenFile}.key`;
}

function parseEndpoints(list: string): Array<{ host: string; port: number }> {
  return list
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean)
    .map((item) => {
      const match = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(item);
      if (!match) throw new OrderlyError('ORDERLY_E_CONFIG_INVALID', `ORDERLY_EGRESS_DENY: ${item} is not host:port`);
      return { host: match[1]!, port: Number(match[2]) };
    });
}

/** Command-line options override the environment of the same name. */
export function loadRunnerConfig(overrides: Record<string, string> = {}, env: Record<string, string | undefined> = process.env): RunnerConfig {
  const config = parseConfig(RunnerConfigSchema, { ...env, ...overrides });
  assertSandboxAllowed(config);
  return config;
}

/**
 * `ORDERLY_SANDBOX=none` runs bot code uncontained: for development only. A runner of a
 * production segment (ORDERLY_PROD_SEGMENTS), of the prod channel or with ORDERLY_ENV=production
 * refuses to start with it, under its own code, before it takes any job. Called at config load
 * and again when the runner starts (a config may be built without the loader).
 */
export function assertSandboxAllowed(config: Pick<RunnerConfig, 'sandbox' | 'segment' | 'productionSegment' | 'channel' | 'production'>): void {
  if (config.sandbox.mode !== 'none') return;
  const why = config.productionSegment
    ? `segment ${config.segment} is a production segment (ORDERLY_PROD_SEGMENTS)`
    : config.channel === 'prod'
      ? 'the runner is on the prod channel (ORDERLY_RUNNER_CHANNEL=prod)'
      : config.production
        ? 'ORDERLY_ENV=production'
        : undefined;
  if (why)
    throw new OrderlyError(
      'ORDERLY_E_SANDBOX_REQUIRED',
      `ORDERLY_SANDBOX=none runs bot code uncontained and is for development only; refused because ${why}: use ORDERLY_SANDBOX=bwrap`,
    );
}

/** Reads the key and token files the config names, with coded errors that name the file only. */
export function loadRunnerCredentials(config: RunnerConfig): {
  controlRoomKeys: ReturnType<typeof parseControlRoomPublicKeys>;
  token: string;
  signingKey: KeyObject;
  releaseKey: KeyObject | undefined;
} {
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
    throw new OrderlyError(
      'ORDERLY_E_CONFIG_INVALID',
      `${config.publicKeyFile} holds no release key, which a prod-channel runner needs: fetch the current control-room.pub`,
    );
  }
  const token = read(config.tokenFile, 'the runner token').trim();
  if (token.length < 16) throw new OrderlyError('ORDERLY_E_CONFIG_INVALID', `the runner token in ${config.tokenFile} is too short`);
  return { controlRoomKeys, token, signingKey: loadSigningKey(config.signingKeyFile), releaseKey };
}

/**
 * The runner's report-signing key. Whoever reads it can report outcomes for this runner's segment,
 * so a file that others on the host can read (or that is not a regular file) is refused, as ssh
 * refuses a private key with loose permissions.
 */
export function loadSigningKey(path: string): KeyObject {
  let stat;
  try {
    stat = statSync(path);
  } catch {
    throw new OrderlyError(
      'ORDERLY_E_CONFIG_INVALID',
      `cannot read the runner signing key at ${path}: create it with \`orderly runners register --key-out\` or \`orderly runner keygen\``,
    );
  }
  if (!stat.isFile()) throw new OrderlyError('ORDERLY_E_CONFIG_INVALID', `the runner signing key at ${path} is not a regular file`);
  if ((stat.mode & 0o077) !== 0)
    throw new OrderlyError(
      'ORDERLY_E_CONFIG_INVALID',
      `the runner signing key at ${path} is readable by others (mode ${(stat.mode & 0o777).toString(8)}); chmod 600 it`,
    );
  try {
    return loadPrivateKey(readFileSync(path, 'utf8'));
  } catch {
    throw new OrderlyError('ORDERLY_E_CONFIG_INVALID', `the runner signing key at ${path} is not a PEM Ed25519 private key`);
  }
}
