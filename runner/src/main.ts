#!/usr/bin/env node
import { Command } from 'commander';
import { Redis } from 'ioredis';
import { writeFileSync } from 'node:fs';
import { boundOfflineQueue, createLogger, generateSigningKeyPair, isOrderlyError, OrderlyError } from '@orderly/shared';
import type { Logger } from '@orderly/shared';
import { createVaultClientFactory } from '@orderly/shared/vault';
import { assertSandboxAllowed, loadRunnerConfig, loadRunnerCredentials, RunnerConfig } from './config';
import { httpControlRoomClient, loadControlRoomTls } from './control-room-client';
import { PackageCache } from './packages/cache';
import { RunCancellations } from './pipeline/cancellations';
import { runnerShutdown } from './pipeline/shutdown';
import { createSegmentWorker } from './pipeline/worker';
import { ReportPublisher } from './reports/publisher';
import { createSandboxPool } from './sandbox/runner-sandboxes';
import { checkRedisAccess } from './redis-acl-check';
import { runRecordCommand } from './local/record';
import { runTryCommand } from './local/try';

/** The runner's composition root: load config and keys, warm the run sandboxes, consume the segment queue. */
export async function startRunner(
  config: RunnerConfig,
  log: Logger = createLogger({ level: config.logLevel, name: 'runner', base: { runner: config.runnerId, segment: config.segment } }),
  hooks: { onBotStarted?: (runId: string, contextMs: number) => void } = {},
): Promise<{ close(): Promise<void> }> {
  assertSandboxAllowed(config);
  const { controlRoomKeys, token, signingKey, releaseKey } = loadRunnerCredentials(config);
  const sandboxes = createSandboxPool(config, log);
  await sandboxes.start();
  // Reports issued during a short outage wait for Redis; past 1000 waiting commands a command is
  // refused (ORDERLY_E_REDIS_OFFLINE_QUEUE_FULL) instead of growing memory without bound.
  const connection = boundOfflineQueue(new Redis(config.redisUrl, { maxRetriesPerRequest: null }));
  connection.on('error', () => undefined);
  await checkRedisAccess(connection, { prefix: config.queuePrefix, segment: config.segment, production: config.production }).catch(async (err: unknown) => {
    connection.disconnect();
    await sandboxes.close().catch(() => undefined); // the refusal is what the user must see
    throw err;
  });
  const reports = new ReportPublisher(connection, config.queuePrefix, controlRoomKeys.sealing, config.runnerId, signingKey, config.segment);
  const client = httpControlRoomClient(config.controlRoomUrl, token, loadControlRoomTls(config.controlRoomTls));
  const cancellations = await RunCancellations.start({
    connection,
    prefix: config.queuePrefix,
    log,
    controlRoomSigningKey: controlRoomKeys.signing,
    segment: config.segment,
  }).catch(async (err: unknown) => {
    await reports.close().catch(() => undefined);
    connection.disconnect();
    await sandboxes.close().catch(() => undefined); // the refusal is what the user must see
    throw err;
  });
  const worker = createSegmentWorker({
    segment: config.segment,
    runnerId: config.runnerId,
    connection,
    prefix: config.queuePrefix,
    controlRoomSigningKey: controlRoomKeys.signing,
    client,
    cache: new PackageCache(config.cacheDir, client, { channel: config.channel, releaseKey }),
    sandboxes,
    sandboxMode: config.sandbox.mode,
    reports,
    vault: config.vaultAddress ? createVaultClientFactory({ address: config.vaultAddress }) : undefined,
    log,
    lockDurationMs: config.jobLockMs,
    stalledIntervalMs: config.stalledIntervalMs,
    attemptLeaseMs: config.attemptLeaseMs,
    cancellations,
    ...hooks,
  });
  log.info({ concurrency: config.concurrency, sandbox: config.sandbox.mode, prewarm: config.sandbox.prewarm, channel: config.channel }, 'runner started');
  // Idempotent, and no step is skipped: stop taking jobs, let runs finish (abort them past the
  // grace), close the worker, the sandboxes (with their egress proxies), the cancel listener, the
  // report publisher, and Redis; each step bounded, so a hung one cannot hold the rest.
  return { close: runnerShutdown({ worker, sandboxes, cancellations, reports, redis: connection, graceMs: config.shutdownGraceMs, log }) };
}

/** Runs the runner CLI (the `orderly-runner` bin). */
export function main(argv: string[]): void {
  const program = new Command('orderly-runner').description('Orderly segment runner');
  program
    .command('start')
    .description('consume one segment queue and run its bots until SIGTERM or SIGINT')
    .option('--segment <segment>', 'the segment to serve (else ORDERLY_SEGMENT)')
    .action(async (options: { segment?: string }) => {
      const config = loadRunnerConfig(options.segment ? { ORDERLY_SEGMENT: options.segment } : {});
      const runner = await startRunner(config);
      for (const signal of ['SIGTERM', 'SIGINT'] as const) {
        process.once(
          signal,
          () =>
            void runner.close().then(
              () => process.exit(0),
              () => process.exit(1),
            ),
        );
      }
    });
  program
    .command('keygen')
    .description(
      "make this runner's Ed25519 report-signing key: the private key to --out (0600), the public key to <out>.pub for `orderly runners register --public-key`",
    )
    .requiredOption('--out <file>', 'the private key file (ORDERLY_RUNNER_SIGNING_KEY_FILE; by default the token file with .token -> .key)')
    .action((options: { out: string }) => {
      const pair = generateSigningKeyPair();
      // 'wx': an existing key is never overwritten (it may be registered already).
      try {
        writeFileSync(options.out, pair.privateKeyPem, { mode: 0o600, flag: 'wx' });
      } catch {
        throw new OrderlyError('ORDERLY_E_CONFIG_INVALID', `cannot create ${options.out} (it exists, or its directory does not)`);
      }
      writeFileSync(`${options.out}.pub`, pair.publicKeyPem, { mode: 0o644 });
      process.stdout.write(`signing key written to ${options.out}; public key in ${options.out}.pub\n`);
    });
  program
    .command('try')
    .description(
      'run one bot once on this machine in a run sandbox, without a control room, Redis or Vault (what `orderly bot try` runs): reads its request as JSON on stdin, prints the outcome as one JSON line',
    )
    .action(async () => {
      // One run, then out: its outcome is written; a timer the interrupted sandbox left must not hold the process.
      process.exit(await runTryCommand());
    });
  program
    .command('record')
    .description("start Playwright's recorder on URL in the runner's Chromium (what `orderly bot record` runs); the script goes to --out")
    .argument('<url>', 'the page to start on')
    .option('--out <file>', 'where the recorded script is written', 'recorded.js')
    .action(async (url: string, options: { out: string }) => process.exit(await runRecordCommand(url, options.out)));
  program.parseAsync(argv).catch((err: unknown) => {
    process.stderr.write(`orderly-runner: ${isOrderlyError(err) ? `${err.code}: ${err.message}` : 'failed to start'}\n`);
    process.exit(1);
  });
}
