import type { Redis } from 'ioredis';
import { OrderlyError, reportsQueueName, runQueueName } from '@orderly/shared';
import type { SegmentName } from '@orderly/shared';

/**
 * Checks at start that the runner's Redis user may use its own segment's run queue and reports
 * queue (where it pushes its reports), so a runner given
 * another segment's ACL user (scripts/redis-acl.js) fails at once with a clear message instead of
 * failing every job later. Also refuses Redis's `default` user in production: every process has its own.
 */
export async function checkRedisAccess(connection: Redis, opts: { prefix: string; segment: SegmentName; production: boolean }): Promise<void> {
  const user = String(await connection.call('ACL', 'WHOAMI'));
  if (opts.production && user === 'default') {
    throw new OrderlyError(
      'ORDERLY_E_CONFIG_INVALID',
      "REDIS_URL connects as Redis's default user; production runners need their segment's own ACL user (see scripts/redis-acl.js)",
    );
  }
  for (const queue of [runQueueName(opts.segment), reportsQueueName(opts.segment)]) {
    try {
      await connection.exists(`${opts.prefix}:${queue}:meta`);
    } catch (err) {
      if (err instanceof Error && err.message.startsWith('NOPERM')) {
        throw new OrderlyError(
          'ORDERLY_E_CONFIG_INVALID',
          `Redis user "${user}" may not use the queue ${opts.prefix}:${queue}:* of segment ${opts.segment}: is REDIS_URL another segment's user?`,
        );
      }
      throw err;
    }
  }
}
