#!/usr/bin/env node
import { Command } from 'commander';
import { Redis } from 'ioredis';
import { createLogger, isOrderlyError } from '@orderly/shared';
import type { Logger } from '@orderly/shared';
import { createVaultClientFactory } from '@orderly/shared/vault';
import { BotHost, resolveHostUser } from './bot-host/host';
import { loadRunnerConfig, loadRunnerCredentials, RunnerConfig } from './config';
import { httpControlRoomClient, loadControlRoomTls } from './control-room-client';
import { PackageCache } from './packages/cache';
import { RunCancellations } from './pipeline/cancellations';
import { createSegmentWorker } from './pipeline/worker';
import { ReportPublisher } from './reports/publisher';

/** The runner's composition root: load config and keys, start bot hosts, consume the segment queue. */
export async function startRunner(
  config: RunnerConfig,
  log: Logger = createLogger({ level: config.logLevel, name: 'runner', base: { runner: config.runnerId, segment: config.segment } }),
  hooks: { onBotStarted?: (runId: string, contextMs: number) => void } = {},
): Promise<{ close(): Promise<void> }> {
  const { controlRoomKeys, token, releaseKey } = loadRunnerCredentials(config);
  const user = resolveHostUser(config.botHostUser, log);
  const hosts = Array.from({ length: config.concurrency }, () => new BotHost({ chromiumPath: config.chromiumPath, user, log }));
  await Promise.all(hosts.map((h) => h.start()));
  const connection = new Redis(config.redisUrl, { maxRetriesPerRequest: null });
  connection.on('error', () => undefined);
  const reports = new ReportPublisher(connection, config.queuePrefix, controlRoomKeys.sealing, config.runnerId, token);
  const client = httpControlRoomClient(config.controlRoomUrl, token, loadControlRoomTls(config.controlRoomTls));
  const cancellations = await RunCancellations.start({ connection, prefix: config.queuePrefix, log });
  const { close } = createSegmentWorker({
    segment: config.segment,
    runnerId: config.runnerId,
    connection,
    prefix: config.queuePrefix,
    controlRoomSigningKey: controlRoomKeys.signing,
    client,
    cache: new PackageCache(config.cacheDir, client, { channel: config.channel, releaseKey }),
    hosts,
    reports,
    vault: config.vaultAddress ? createVaultClientFactory({ address: config.vaultAddress }) : undefined,
    log,
    lockDurationMs: config.jobLockMs,
    stalledIntervalMs: config.stalledIntervalMs,
    cancellations,
    ...hooks,
  });
  log.info({ concurrency: config.concurrency, isolatedUser: user !== undefined, channel: config.channel }, 'runner started');
  let closed: Promise<void> | undefined;
  return {
    close: () =>
      (closed ??= (async () => {
        try {
          await close(config.shutdownGraceMs);
        } finally {
          await Promise.allSettled(hosts.map((h) => h.close()));
          await cancellations.close();
          await reports.close().catch(() => undefined);
          await connection.quit().catch(() => connection.disconnect());
          log.info('runner stopped');
        }
      })()),
  };
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
        process.once(signal, () => void runner.close().then(() => process.exit(0), () => process.exit(1)));
      }
    });
  program.parseAsync(argv).catch((err: unknown) => {
    process.stderr.write(`orderly-runner: ${isOrderlyError(err) ? `${err.code}: ${err.message}` : 'failed to start'}\n`);
    process.exit(1);
  });
}

